// Package emulator starts the two AWS emulators the project runs against locally: DynamoDB Local
// (AWS's own jar, shipped in the npm package amplify-dynamodb-simulator) and kinesis-mock (npm
// kinesis-local). Both are pinned in tools/package.json and installed by `make tools`.
//
// An emulator already listening on the requested port is reused and left running; only what Start
// started is stopped by Stop. That lets `make test` start them once for every test package.
package emulator

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// Config says where the emulators live and which ports they listen on.
type Config struct {
	ToolsDir     string // the repo's tools/ folder (with node_modules installed)
	DynamoDBPort int
	KinesisPort  int
	LogDir       string // emulator stdout/stderr go here; empty discards them
	Logger       *slog.Logger
}

// Stack is a pair of running emulators.
type Stack struct {
	DynamoDBEndpoint string
	KinesisEndpoint  string
	started          []*exec.Cmd
	logger           *slog.Logger
}

// DefaultConfig returns the conventional ports (DynamoDB Local 8000, kinesis-mock 4567) and the
// tools folder of the repository containing dir.
func DefaultConfig(dir string) (Config, error) {
	root, err := RepoRoot(dir)
	if err != nil {
		return Config{}, err
	}
	return Config{
		ToolsDir:     filepath.Join(root, "tools"),
		DynamoDBPort: 8000,
		KinesisPort:  4567,
		LogDir:       filepath.Join(root, ".emulators"),
	}, nil
}

// RepoRoot walks up from dir to the folder holding go.mod.
func RepoRoot(dir string) (string, error) {
	d, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve %s: %w", dir, err)
	}
	for {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("no go.mod above %s", dir)
		}
		d = parent
	}
}

// Start starts (or reuses) both emulators and waits until they answer.
func Start(ctx context.Context, cfg Config) (*Stack, error) {
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Stack{
		DynamoDBEndpoint: fmt.Sprintf("http://127.0.0.1:%d", cfg.DynamoDBPort),
		KinesisEndpoint:  fmt.Sprintf("http://127.0.0.1:%d", cfg.KinesisPort),
		logger:           logger,
	}
	nm := filepath.Join(cfg.ToolsDir, "node_modules")
	ddbDir := filepath.Join(nm, "amplify-dynamodb-simulator", "emulator")
	kinDir := filepath.Join(nm, "kinesis-local")

	if !listening(cfg.DynamoDBPort) {
		jar := filepath.Join(ddbDir, "DynamoDBLocal.jar")
		if _, err := os.Stat(jar); err != nil {
			return nil, fmt.Errorf("DynamoDB Local not installed at %s (run `make tools`): %w", jar, err)
		}
		cmd := exec.Command("java",
			"-Djava.library.path="+filepath.Join(ddbDir, "DynamoDBLocal_lib"),
			"-Xmx1g", "-jar", jar, "-inMemory", "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(cfg.DynamoDBPort))
		cmd.Dir = ddbDir
		if err := s.spawn(cmd, cfg.LogDir, "dynamodb"); err != nil {
			return nil, err
		}
	} else {
		logger.Info("reusing DynamoDB Local", "endpoint", s.DynamoDBEndpoint)
	}

	if !listening(cfg.KinesisPort) {
		main := filepath.Join(kinDir, "main.js")
		if _, err := os.Stat(main); err != nil {
			s.Stop()
			return nil, fmt.Errorf("kinesis-mock not installed at %s (run `make tools`): %w", main, err)
		}
		cmd := exec.Command("node", main)
		cmd.Dir = kinDir
		cmd.Env = append(os.Environ(),
			"KINESIS_MOCK_CERT_PATH="+filepath.Join(kinDir, "server.json"),
			"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(cfg.KinesisPort),
			"KINESIS_MOCK_TLS_PORT="+strconv.Itoa(cfg.KinesisPort+1),
			// Tests create many short-lived streams: no artificial delays, generous limits.
			"CREATE_STREAM_DURATION=0ms", "DELETE_STREAM_DURATION=0ms",
			"SHARD_LIMIT=100000", "ON_DEMAND_STREAM_COUNT_LIMIT=100000",
			"LOG_LEVEL=WARN",
		)
		if err := s.spawn(cmd, cfg.LogDir, "kinesis"); err != nil {
			s.Stop()
			return nil, err
		}
	} else {
		logger.Info("reusing kinesis-mock", "endpoint", s.KinesisEndpoint)
	}

	deadline := time.Now().Add(60 * time.Second)
	for _, port := range []int{cfg.DynamoDBPort, cfg.KinesisPort} {
		for !listening(port) {
			if time.Now().After(deadline) {
				s.Stop()
				return nil, fmt.Errorf("emulator on port %d did not start within 60s (logs in %s)", port, cfg.LogDir)
			}
			select {
			case <-ctx.Done():
				s.Stop()
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return s, nil
}

func (s *Stack) spawn(cmd *exec.Cmd, logDir, name string) error {
	if logDir != "" {
		if err := os.MkdirAll(logDir, 0o755); err != nil {
			return fmt.Errorf("create log dir: %w", err)
		}
		f, err := os.Create(filepath.Join(logDir, name+".log"))
		if err != nil {
			return fmt.Errorf("create %s log: %w", name, err)
		}
		cmd.Stdout, cmd.Stderr = f, f
	}
	// Own process group, so Stop can end the JVM / node and anything they spawned.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s emulator: %w", name, err)
	}
	s.logger.Info("started emulator", "name", name, "pid", cmd.Process.Pid)
	s.started = append(s.started, cmd)
	return nil
}

// Started reports whether this Stack started any process (false when everything was reused).
func (s *Stack) Started() bool { return len(s.started) > 0 }

// Stop ends the emulators this Stack started; reused ones keep running.
func (s *Stack) Stop() {
	for _, cmd := range s.started {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
	}
	s.started = nil
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// FreePort asks the kernel for an unused TCP port.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("unexpected listener address")
	}
	return addr.Port, nil
}
