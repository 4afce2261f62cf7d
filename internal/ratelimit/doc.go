// Package ratelimit enforces keygate's `limits` and `blocks`: per-key rate
// limits, fixed-window quotas and auto-blocks, plus the HTTP pieces around
// them (RateLimit headers, Retry-After, the client IP behind trusted
// proxies).
//
// # Rate limits: GCRA
//
// A rate limit "N/per, burst B" is the generic cell rate algorithm (GCRA,
// ITU-T I.371; the "virtual scheduling" form), which is a token bucket kept
// as one number per key: the theoretical arrival time (TAT). Each admitted
// request costs the emission interval T = per/N; a request at time now is
// admitted iff max(TAT, now) + T - now ≤ B×T, and then TAT becomes
// max(TAT, now) + T. A fresh key therefore admits B requests at once and one
// every T afterwards. GCRA is written here by hand rather than taken from
// golang.org/x/time/rate because the same integer arithmetic (microseconds)
// must run in memory and as one SQL statement, so a limit behaves
// identically whether or not it is shared.
//
// In-memory limits (the default) live in a map per limit, split into 64
// mutex-guarded shards by key hash. A key whose TAT is in the past admits
// exactly like a missing key, so each shard drops such entries about once a
// minute; memory is bounded by the keys active within one burst window.
//
// Shared limits (`shared: true`) are exact across nodes: each check is one
// upsert on table rate_limits (see store.LimitStore.TakeRate) that advances
// the TAT only when it admits. PostgreSQL locks the row for ON CONFLICT DO
// UPDATE and SQLite has a single writer, so racing nodes serialise on the
// key and never admit more than the limit. Every node supplies its own
// clock; nodes must keep their clocks in sync (NTP), since a skew of d lets
// through about d/T extra requests.
//
// # Quotas
//
// A quota "N/window" counts requests per key in fixed windows aligned to
// the Unix epoch (window start = floor(now/window)×window, so 24h windows
// start at 00:00 UTC). Counters always live in the database (table quotas):
// one upsert increments only while the count is under N. A refusal carries
// Retry-After = time to the window's end.
//
// # Several limits on one request
//
// Every limit whose key has a value in the request (an empty subject, say,
// skips subject limits) and whose upstream matches applies; a request is
// admitted only if all admit. Limits are taken in order — in-memory rates,
// shared rates, then quotas, so a refused request costs the database as
// little as possible — and when one refuses, the units already taken from
// the others are given back (TAT moved back by T, quota count decremented).
// The give-back is exact in memory; for database state it is a second
// statement, so a request racing in between may see a unit that is about
// to be refunded (an over-count of at most one unit per refusal race), which
// we accept rather than hold row locks across limits.
//
// # Headers
//
// Decisions carry header values in the syntax of
// draft-ietf-httpapi-ratelimit-headers-10 (Structured Field lists, RFC
// 9651): RateLimit-Policy `"per-user";q=20;w=20` and RateLimit
// `"per-user";r=19;t=1`. For a rate limit q is the burst and w the seconds
// a full burst takes to replenish (q/w is the sustained rate); for a quota
// q is N and w the window. r is the units left and t the seconds until the
// policy is fully replenished (for a quota: the end of the window). Only
// the policy closest to refusing (the one that refused, or the admitted one
// with the fewest units left) is reported, which the draft allows. A
// refusal also sets Retry-After (RFC 9110 §10.2.3) in whole seconds,
// rounded up, at least 1.
//
// # Auto-block
//
// A Blocker counts events (limit hits, auth failures) per rule and key in
// memory, per node, with a sliding-window counter (the previous fixed
// window's count weighted by its overlap plus the current one), so a
// rule's threshold is per node and approximate to within one window's
// weighting; blocking is a defence against abuse, not an exact quota. When
// a rule fires, the block itself is written to the database (table blocks)
// so every node enforces it: each node polls the active blocks every
// second and keeps them in memory, so the hot-path check is a map lookup.
// Expired blocks lift themselves; Unblock lifts one at once.
//
// # Client IP
//
// ClientIP believes X-Forwarded-For only when the peer is a trusted proxy,
// and then walks it from the right, skipping trusted hops: the first
// untrusted address is the client (the left part of the header is
// whatever the client sent, so it is never believed).
package ratelimit
