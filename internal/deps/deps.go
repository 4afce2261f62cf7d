package deps

import (
	_ "github.com/go-jose/go-jose/v4"
	_ "github.com/jackc/pgx/v5/stdlib"
	_ "github.com/pressly/goose/v3"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/time/rate"
	_ "modernc.org/sqlite"
	_ "golang.org/x/oauth2"
	_ "golang.org/x/sync/singleflight"
)
