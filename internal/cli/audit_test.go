package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keygate/keygate/internal/audit"
	"github.com/keygate/keygate/internal/store"
	"github.com/keygate/keygate/internal/store/backend"
)

// tailBuffer is written by the command and read by the test.
type tailBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *tailBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *tailBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestAuditTail(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"KEYGATE_CONFIG": writeConfig(t, dir)}
	if _, err := runCLI(t, env, "", "init"); err != nil {
		t.Fatal(err)
	}
	st, err := backend.Open(t.Context(), "sqlite://"+dir+"/keygate.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	now := time.Now()
	for i, kind := range []string{store.AuditTokenIssue, store.AuditRequest, store.AuditTokenRevoke} {
		if err := audit.Append(t.Context(), st, audit.Record{Time: now.Add(time.Duration(i-10) * time.Minute), Kind: kind, Subject: "google|1"}); err != nil {
			t.Fatal(err)
		}
	}
	kinds := func(out string) []string {
		var ks []string
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			var r audit.Record
			if err := json.Unmarshal([]byte(line), &r); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			ks = append(ks, r.Kind)
		}
		return ks
	}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"all", nil, "[token.issue request token.revoke]"},
		{"last two", []string{"--limit", "2"}, "[request token.revoke]"},
		{"since duration", []string{"--since", "9m30s"}, "[request token.revoke]"},
		{"since time", []string{"--since", now.Add(-10 * time.Minute).UTC().Format(time.RFC3339Nano), "--limit", "1"}, "[token.issue]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, env, "", append([]string{"audit", "tail"}, tt.args...)...)
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.Join(kinds(out), " "); "["+got+"]" != tt.want {
				t.Errorf("kinds = [%s], want %s", got, tt.want)
			}
		})
	}
	for _, args := range [][]string{{"--since", "yesterday"}, {"--limit", "0"}, {"--since", "-5m"}} {
		if _, err := runCLI(t, env, "", append([]string{"audit", "tail"}, args...)...); err == nil {
			t.Errorf("audit tail %v succeeded", args)
		}
	}

	// -f prints new records until interrupted.
	ctx, cancel := context.WithCancel(t.Context())
	out := &tailBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, Env{Args: []string{"audit", "tail", "-f", "--limit", "1"}, Getenv: func(k string) string { return env[k] },
			Stdin: strings.NewReader(""), Stdout: out, Stderr: &bytes.Buffer{}})
	}()
	time.Sleep(300 * time.Millisecond)
	if err := audit.Append(t.Context(), st, audit.Record{Kind: store.AuditBlock, Subject: "google|2"}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), `"kind":"block"`) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("tail -f: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("tail -f did not stop when cancelled")
	}
	if got := strings.Join(kinds(out.String()), " "); got != "token.revoke block" {
		t.Errorf("tail -f kinds = %s", got)
	}
}
