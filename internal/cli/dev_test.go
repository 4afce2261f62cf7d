package cli

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startDevCLI runs `keygate serve --dev` in the current directory until the
// returned stop is called; it returns the printed walk-through.
func startDevCLI(t *testing.T, pub, adm string) (string, func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- Execute(ctx, Env{Args: []string{"serve", "--dev", "--listen", pub, "--admin-listen", adm},
			Getenv: func(string) string { return "" }, Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errOut})
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "Also:") {
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve --dev exited: %v\n%s", err, errOut.String())
		default:
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("no walk-through printed; stderr:\n%s", errOut.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return out.String(), func() error { cancel(); return <-done }
}

// The walk-through printed by serve --dev works when pasted into a shell.
func TestDevWalkthroughWorks(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("bash not installed")
	}
	if _, err := exec.LookPath("curl"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("curl is needed to run the walk-through")
		}
		t.Skip("curl not installed")
	}
	t.Chdir(t.TempDir())
	pub, adm := freeAddr(t), freeAddr(t)
	for run := 1; run <= 2; run++ { // the second run reuses ./keygate-dev
		out, stop := startDevCLI(t, pub, adm)
		var script []string
		for _, line := range strings.Split(out, "\n") {
			line = strings.TrimPrefix(line, "  ")
			if strings.HasPrefix(line, "B=") || strings.HasPrefix(line, "ID_TOKEN=") || strings.HasPrefix(line, "TOKENS=") ||
				strings.HasPrefix(line, "AT=") || strings.HasPrefix(line, "curl ") ||
				strings.HasPrefix(line, "echo ") || strings.HasPrefix(line, "printf ") {
				script = append(script, line)
			}
		}
		if len(script) < 9 {
			t.Fatalf("walk-through has %d commands:\n%s", len(script), out)
		}
		cmd := exec.Command(bash, "-c", strings.Join(script, "\n"))
		got, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("run %d: walk-through failed: %v\n%s", run, err, got)
		}
		text := string(got)
		for _, want := range []string{`"X-Api-Key":["demo-upstream-key-`, `"token_type":"Bearer"`, "\n401\n", `"scope":"echo"`} {
			if !strings.Contains(text, want) {
				t.Errorf("run %d: walk-through output lacks %q:\n%s", run, want, text)
			}
		}
		if strings.Contains(text, `"Authorization"`) {
			t.Errorf("run %d: the upstream saw the app's Authorization header:\n%s", run, text)
		}
		if err := stop(); err != nil {
			t.Fatalf("run %d: graceful stop: %v", run, err)
		}
	}
	st, err := os.Stat("keygate-dev")
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("keygate-dev: %v mode %v, want 0700", err, st.Mode().Perm())
	}
}

func TestDevRefusesNonLoopback(t *testing.T) {
	t.Chdir(t.TempDir())
	_, err := runCLI(t, nil, "", "serve", "--dev", "--listen", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("err = %v, want refusal of a non-loopback address", err)
	}
}
