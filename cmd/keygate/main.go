// Command keygate keeps API keys out of mobile and browser apps: an OAuth 2.0
// token service and a credential-injecting proxy in one binary.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/keygate/keygate/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "keygate:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return cli.Execute(ctx, cli.Env{Args: args, Getenv: getenv, Stdin: os.Stdin, Stdout: stdout, Stderr: stderr})
}
