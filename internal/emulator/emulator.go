// Package emulator starts the two AWS emulators the project runs against locally: DynamoDB Local
// (AWS's own jar, shipped in the npm package amplify-dynamodb-simulator) and kinesis-mock (npm
// kinesis-local). Both are pinned in tools/package.json and installed by `make tools`.
//
// An emulator already listening on the requested port is reused and left running; only what Start
// started is stopped by Stop. That lets `make test` start them once for every test package.
package emulator

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
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
	// DynamoDBDataDir, if set, makes DynamoDB Local keep its data in this folder (-dbPath), so
	// it survives a restart; empty runs it in memory.
	DynamoDBDataDir string
	Logger          *slog.Logger
}

// BindHost is the only address the emulators listen on: the table holds profiles and write keys,
// so it must not be reachable from the network.
const BindHost = "127.0.0.1"

// The emulators' own launchers bind every interface and have no option for the address:
// DynamoDB Local (Jetty) is started through a small Java launcher that sets the connector's
// host, and kinesis-mock gets a Node preload that binds its listeners to BindHost.
var (
	//go:embed LoopbackDynamoDBLocal.java
	ddbLauncher []byte
	//go:embed loopback.cjs
	nodePreload []byte
)

// Names of the emulators, for StopOne and Restart.
const (
	DynamoDB = "dynamodb"
	Kinesis  = "kinesis"
)

// Stack is a pair of running emulators.
type Stack struct {
	DynamoDBEndpoint string
	KinesisEndpoint  string
	started          map[string]*exec.Cmd
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
		DynamoDBEndpoint: fmt.Sprintf("http://%s:%d", BindHost, cfg.DynamoDBPort),
		KinesisEndpoint:  fmt.Sprintf("http://%s:%d", BindHost, cfg.KinesisPort),
		started:          map[string]*exec.Cmd{},
		logger:           logger,
	}
	if listening(cfg.DynamoDBPort) {
		logger.Info("reusing DynamoDB Local", "endpoint", s.DynamoDBEndpoint)
	} else if err := s.startDynamoDB(cfg); err != nil {
		return nil, err
	}
	if listening(cfg.KinesisPort) {
		logger.Info("reusing kinesis-mock", "endpoint", s.KinesisEndpoint)
	} else if err := s.startKinesis(cfg); err != nil {
		s.Stop()
		return nil, err
	}
	if err := waitListening(ctx, cfg, cfg.DynamoDBPort, cfg.KinesisPort); err != nil {
		s.Stop()
		return nil, err
	}
	return s, nil
}

// Restart starts again the emulator named (DynamoDB or Kinesis) on its port if nothing listens
// there, e.g. after StopOne, and waits until it answers.
func (s *Stack) Restart(ctx context.Context, cfg Config, name string) error {
	port, start := cfg.KinesisPort, s.startKinesis
	if name == DynamoDB {
		port, start = cfg.DynamoDBPort, s.startDynamoDB
	}
	if !listening(port) {
		if err := start(cfg); err != nil {
			return err
		}
	}
	return waitListening(ctx, cfg, port)
}

func (s *Stack) startDynamoDB(cfg Config) error {
	ddbDir := filepath.Join(cfg.ToolsDir, "node_modules", "amplify-dynamodb-simulator", "emulator")
	jar := filepath.Join(ddbDir, "DynamoDBLocal.jar")
	if _, err := os.Stat(jar); err != nil {
		return fmt.Errorf("DynamoDB Local not installed at %s (run `make tools`): %w", jar, err)
	}
	classpath, mainClass, err := ddbLauncherClass(jar)
	if err != nil {
		return err
	}
	args := []string{
		"-Djava.library.path=" + filepath.Join(ddbDir, "DynamoDBLocal_lib"), "-Dcdp.bindHost=" + BindHost,
		"-Xmx1g", "-cp", classpath, mainClass, "-sharedDb", "-disableTelemetry", "-port", strconv.Itoa(cfg.DynamoDBPort),
	}
	if cfg.DynamoDBDataDir != "" {
		if err := os.MkdirAll(cfg.DynamoDBDataDir, 0o755); err != nil {
			return fmt.Errorf("create DynamoDB Local data dir: %w", err)
		}
		args = append(args, "-dbPath", cfg.DynamoDBDataDir)
	} else {
		args = append(args, "-inMemory")
	}
	cmd := exec.Command("java", args...)
	cmd.Dir = ddbDir
	return s.spawn(cmd, cfg.LogDir, DynamoDB)
}

func (s *Stack) startKinesis(cfg Config) error {
	kinDir := filepath.Join(cfg.ToolsDir, "node_modules", "kinesis-local")
	main := filepath.Join(kinDir, "main.js")
	if _, err := os.Stat(main); err != nil {
		return fmt.Errorf("kinesis-mock not installed at %s (run `make tools`): %w", main, err)
	}
	preload, err := writeSupportFile("loopback.cjs", nodePreload)
	if err != nil {
		return err
	}
	cmd := exec.Command("node", "--require", preload, main)
	cmd.Dir = kinDir
	cmd.Env = append(os.Environ(),
		"CDP_BIND_HOST="+BindHost,
		"KINESIS_MOCK_CERT_PATH="+filepath.Join(kinDir, "server.json"),
		"KINESIS_MOCK_PLAIN_PORT="+strconv.Itoa(cfg.KinesisPort),
		"KINESIS_MOCK_TLS_PORT="+strconv.Itoa(cfg.KinesisPort+1),
		// Tests create many short-lived streams: no artificial delays, generous limits.
		"CREATE_STREAM_DURATION=0ms", "DELETE_STREAM_DURATION=0ms",
		"SHARD_LIMIT=100000", "ON_DEMAND_STREAM_COUNT_LIMIT=100000",
		"LOG_LEVEL=WARN",
	)
	return s.spawn(cmd, cfg.LogDir, Kinesis)
}

// ddbLauncherClass compiles the launcher once (cached next to its source, by content) and
// returns the class path and main class to run; without javac, Java runs the source file
// itself (single-file source mode), compiling it at every start.
func ddbLauncherClass(jar string) (classpath, main string, err error) {
	src, err := writeSupportFile("LoopbackDynamoDBLocal.java", ddbLauncher)
	if err != nil {
		return "", "", err
	}
	dir := filepath.Dir(src)
	classes := filepath.Join(dir, "classes")
	if _, err := os.Stat(filepath.Join(classes, "LoopbackDynamoDBLocal.class")); err == nil {
		return jar + string(os.PathListSeparator) + classes, "LoopbackDynamoDBLocal", nil
	}
	tmp, err := os.MkdirTemp(dir, "classes.")
	if err != nil {
		return "", "", fmt.Errorf("emulator launcher dir: %w", err)
	}
	if out, err := exec.Command("javac", "-nowarn", "-cp", jar, "-d", tmp, src).CombinedOutput(); err != nil {
		_ = os.RemoveAll(tmp)
		if errors.Is(err, exec.ErrNotFound) {
			return jar, src, nil
		}
		return "", "", fmt.Errorf("compile DynamoDB Local launcher: %w: %s", err, out)
	}
	if err := os.Rename(tmp, classes); err != nil {
		_ = os.RemoveAll(tmp) // compiled concurrently by another process: use theirs
	}
	return jar + string(os.PathListSeparator) + classes, "LoopbackDynamoDBLocal", nil
}

// writeSupportFile writes an embedded launcher file into a per-content folder under the
// system's temporary directory (once) and returns its path.
func writeSupportFile(name string, content []byte) (string, error) {
	sum := sha256.Sum256(content)
	dir := filepath.Join(os.TempDir(), "cdp-emulator-"+hex.EncodeToString(sum[:6]))
	path := filepath.Join(dir, name)
	if b, err := os.ReadFile(path); err == nil && string(b) == string(content) {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("emulator support dir: %w", err)
	}
	tmp, err := os.CreateTemp(dir, name+".*")
	if err != nil {
		return "", fmt.Errorf("emulator support file: %w", err)
	}
	_, werr := tmp.Write(content)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		return "", fmt.Errorf("write %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("place %s: %w", name, err)
	}
	return path, nil
}

func waitListening(ctx context.Context, cfg Config, ports ...int) error {
	deadline := time.Now().Add(2 * time.Minute)
	for _, port := range ports {
		for !listening(port) {
			if time.Now().After(deadline) {
				return fmt.Errorf("emulator on port %d did not start within 2 minutes (logs in %s)", port, cfg.LogDir)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
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
	s.started[name] = cmd
	return nil
}

// Started reports whether this Stack started any process (false when everything was reused).
func (s *Stack) Started() bool { return len(s.started) > 0 }

// Stop ends the emulators this Stack started; reused ones keep running.
func (s *Stack) Stop() {
	for name := range s.started {
		s.StopOne(name, false)
	}
}

// StopOne ends one emulator this Stack started (DynamoDB or Kinesis); it is a no-op for one it
// did not start. With kill, the process group gets SIGKILL at once (a crash); otherwise SIGTERM
// and, after 5 s, SIGKILL.
func (s *Stack) StopOne(name string, kill bool) {
	cmd, ok := s.started[name]
	if !ok {
		return
	}
	delete(s.started, name)
	sig := syscall.SIGTERM
	if kill {
		sig = syscall.SIGKILL
	}
	_ = syscall.Kill(-cmd.Process.Pid, sig)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
	}
}

func listening(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort(BindHost, strconv.Itoa(port)), 200*time.Millisecond)
	if err != nil {
		return false
	}
	_ = c.Close()
	return true
}

// FreeKinesisPort returns an unused TCP port whose next port is unused too: kinesis-mock also
// listens on KinesisPort+1 (TLS), and a taken next port keeps it from starting.
func FreeKinesisPort() (int, error) {
	for range 50 {
		p, err := FreePort()
		if err != nil {
			return 0, err
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+1)))
		if err == nil {
			l.Close()
			return p, nil
		}
	}
	return 0, errors.New("find free port: no free pair of adjacent ports")
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
