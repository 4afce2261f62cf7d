package config

import (
	"strings"
	"testing"
)

func TestParseDSN(t *testing.T) {
	tests := []struct {
		name    string
		dsn     string
		want    DSN
		wantErr string
	}{
		{"sqlite relative", "sqlite://keygate.db", DSN{Driver: DriverSQLite, Path: "keygate.db"}, ""},
		{"sqlite dir relative", "sqlite://./data/keygate.db", DSN{Driver: DriverSQLite, Path: "./data/keygate.db"}, ""},
		{"sqlite absolute", "sqlite:///var/lib/keygate/keygate.db", DSN{Driver: DriverSQLite, Path: "/var/lib/keygate/keygate.db"}, ""},
		{"sqlite spaces kept", "sqlite://my data/k.db", DSN{Driver: DriverSQLite, Path: "my data/k.db"}, ""},
		{"sqlite empty", "sqlite://", DSN{}, "sqlite DSN has no file path"},
		{"sqlite query", "sqlite://k.db?_pragma=foreign_keys(1)", DSN{}, "sqlite DSN must not have ?options"},
		{"sqlite directory", "sqlite:///var/lib/", DSN{}, "names a directory"},
		{"sqlite NUL", "sqlite://k\x00.db", DSN{}, "must not contain NUL bytes"},
		{"postgres", "postgres://kg:pw@db.internal:5432/kg?sslmode=verify-full", DSN{Driver: DriverPostgres, URL: "postgres://kg:pw@db.internal:5432/kg?sslmode=verify-full"}, ""},
		{"postgresql", "postgresql://db/kg", DSN{Driver: DriverPostgres, URL: "postgresql://db/kg"}, ""},
		{"postgres socket", "postgres:///kg?host=/var/run/postgresql", DSN{Driver: DriverPostgres, URL: "postgres:///kg?host=/var/run/postgresql"}, ""},
		{"postgres no host", "postgres:///kg", DSN{}, "postgres URL has no host"},
		{"postgres bad escape", "postgres://kg:p%zzw@db/kg", DSN{}, "invalid postgres URL"},
		{"empty", "", DSN{}, "database DSN is empty"},
		{"mysql", "mysql://u:p@h/db", DSN{}, `unsupported database scheme "mysql"`},
		{"upper case scheme", "SQLITE://k.db", DSN{}, `unsupported database scheme "SQLITE"`},
		{"bare path", "keygate.db", DSN{}, "unsupported database DSN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseDSN(tc.dsn)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseDSN(%q) error = %v, want %q", tc.dsn, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseDSN(%q): %v", tc.dsn, err)
			}
			if got != tc.want {
				t.Errorf("ParseDSN(%q) = %+v, want %+v", tc.dsn, got, tc.want)
			}
		})
	}
}

// A password must never show in an error, however the URL around it is broken.
func TestParseDSNNeverShowsPassword(t *testing.T) {
	const pw = "Hunter2Secret"
	dsns := []string{
		"postgres://kg:" + pw + "@/kg",
		"postgres://kg:" + pw + "%zz@db/kg",
		"postgres://kg:" + pw + "/x@db/kg",
		"postgres://kg:" + pw + "@db:port/kg",
		"postgres://kg:" + pw + "@[::1/kg",
		"postgresql://kg:" + pw + "@db host/kg",
		"mysql://kg:" + pw + "@db/kg",
		"pg://kg:" + pw + "@db/kg",
		"kg:" + pw + "@db/kg",
		"postgres://kg:" + pw + "@db/kg\x00",
		"sqlite://kg:" + pw + "@db/kg?x",
	}
	for _, dsn := range dsns {
		_, err := ParseDSN(dsn)
		if err == nil {
			t.Errorf("ParseDSN(%q) succeeded, want an error", dsn)
			continue
		}
		if strings.Contains(err.Error(), pw) {
			t.Errorf("ParseDSN(%q) error %q shows the password", dsn, err)
		}
	}
}

func TestDSNRedacted(t *testing.T) {
	tests := []struct {
		dsn, want string
	}{
		{"postgres://kg:Hunter2Secret@db/kg?sslmode=disable", "postgres://kg:xxxxx@db/kg?sslmode=disable"},
		{"postgres://db/kg", "postgres://db/kg"},
		{"sqlite:///var/lib/k.db", "sqlite:///var/lib/k.db"},
	}
	for _, tc := range tests {
		d, err := ParseDSN(tc.dsn)
		if err != nil {
			t.Fatal(err)
		}
		if got := d.Redacted(); got != tc.want {
			t.Errorf("Redacted(%q) = %q, want %q", tc.dsn, got, tc.want)
		}
	}
}
