package oauth

import (
	"context"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// TestWithGolangOAuth2 runs golang.org/x/oauth2, unmodified, against the
// server: client credentials with client_secret_basic (auto-detected), and
// refresh through a TokenSource.
func TestWithGolangOAuth2(t *testing.T) {
	f := newFixture(t)
	ctx := context.WithValue(t.Context(), oauth2.HTTPClient, f.srv.Client())

	cc := clientcredentials.Config{ClientID: "backend", ClientSecret: backendSecret,
		TokenURL: f.issuer + "/oauth2/token", Scopes: []string{"echo"}}
	tok, err := cc.Token(ctx)
	if err != nil {
		t.Fatalf("client credentials: %v", err)
	}
	if tok.AccessToken == "" || tok.TokenType != "Bearer" || tok.RefreshToken != "" || tok.Extra("scope") != "echo" {
		t.Errorf("client credentials token = %+v", tok)
	}
	bad := cc
	bad.ClientSecret = "wrong"
	if _, err := bad.Token(ctx); err == nil {
		t.Error("wrong secret accepted")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_client" {
		t.Errorf("wrong secret error = %v, want invalid_client", err)
	}

	rt := f.exchange(t, "app", "alice").str("refresh_token")
	conf := oauth2.Config{ClientID: "app", Endpoint: oauth2.Endpoint{TokenURL: f.issuer + "/oauth2/token", AuthStyle: oauth2.AuthStyleInParams}}
	src := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)})
	got, err := src.Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if got.AccessToken == "" || got.RefreshToken == rt || !refreshTokenRE.MatchString(got.RefreshToken) {
		t.Errorf("refreshed token = %+v", got)
	}
	if c := f.tokens.claims(got.AccessToken); c.Subject != "dev|alice" || c.SID == "" {
		t.Errorf("refreshed claims = %+v", c)
	}
	// The rotated token outside the grace window: x/oauth2 surfaces invalid_grant.
	f.clock.advance(grace + time.Second)
	old := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: rt, Expiry: time.Now().Add(-time.Minute)})
	if _, err := old.Token(); err == nil {
		t.Error("reused refresh token accepted")
	} else if re, ok := err.(*oauth2.RetrieveError); !ok || re.ErrorCode != "invalid_grant" || re.Response.StatusCode != http.StatusBadRequest {
		t.Errorf("reuse error = %v, want invalid_grant", err)
	}
}
