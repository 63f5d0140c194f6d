//go:build integration

package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/kinesis"

	"github.com/serverless-cdp/cdp/internal/app"
	"github.com/serverless-cdp/cdp/internal/awsenv"
	"github.com/serverless-cdp/cdp/internal/emulator"
	"github.com/serverless-cdp/cdp/internal/emulator/testenv"
	"github.com/serverless-cdp/cdp/internal/local"
)

const (
	chaosWriteKey   = "chaos-write-key-0123456789abcdef"
	chaosAdminToken = "chaos-admin-token-0123456789abcdef"
)

// chaosConfig is a configuration on a private table and private streams.
func chaosConfig() app.Config {
	cfg := app.Defaults()
	cfg.Table = testenv.Name("chaos")
	cfg.EventsStream, cfg.ChangesStream, cfg.ActivationsStream = testenv.Name("events"), testenv.Name("changes"), testenv.Name("activations")
	return cfg
}

// chaosStack runs the local deployment in this process; stageClients (optional) gives stages
// their own clients.
func chaosStack(t *testing.T, stageClients func(stage string) awsenv.Clients) *local.Stack {
	t.Helper()
	clients := testenv.Clients(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stack, err := local.Start(ctx, clients, local.Options{
		Config: chaosConfig(), Addr: "127.0.0.1:0", Shards: 2, DevWriteKey: chaosWriteKey, DevAdminToken: chaosAdminToken,
		PollInterval: 50 * time.Millisecond, TickInterval: time.Second, RecoverInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewJSONHandler(io.Discard, nil)), StageClients: stageClients,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	t.Cleanup(func() { stack.Close() })
	return stack
}

// TestChaosKinesisRestart: kinesis-mock is killed under a running runner and started again on
// the same port. Events sent while it is down are refused (and resent); the runner recreates its
// streams and answers 200 again without a restart, and every event answered 200 — before,
// during and after — is stored exactly once. kinesis-mock keeps streams in memory, so records
// not yet consumed when it dies die with it: the test lets the first burst drain before the
// kill (DynamoDB Local, holding the profiles, is not restarted: -inMemory would lose them).
// Before, the runner answered 503 until it was restarted.
func TestChaosKinesisRestart(t *testing.T) {
	stack := chaosStack(t, nil)
	s := newChaosSender(stack.URL, chaosWriteKey)
	before, during, after := chaosEvents("before", 5, 20), chaosEvents("during", 5, 4), chaosEvents("after", 5, 20)
	s.resend(t, s.sendAll(before, 5, 4, nil), 30*time.Second)
	chaosExpectExactlyOnce(t, stack.URL, chaosAdminToken, s, before, 60*time.Second)

	chaosEmulators.stack.StopOne(emulator.Kinesis, true)
	refused := s.sendAll(during, 5, 2, nil)
	t.Logf("while kinesis-mock was down: %d of %d events refused", len(refused), len(during))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := chaosEmulators.stack.Restart(ctx, chaosEmulators.cfg, emulator.Kinesis); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	first := s.resend(t, append(refused, after[0]), 60*time.Second)
	t.Logf("first event accepted %s after kinesis-mock was listening again", first.Sub(restarted).Round(time.Millisecond))
	s.resend(t, s.sendAll(after[1:], 5, 4, nil), 30*time.Second)
	all := append(append(append([]chaosEvent{}, before...), during...), after...)
	n := chaosExpectExactlyOnce(t, stack.URL, chaosAdminToken, s, all, 90*time.Second)
	t.Logf("%d events answered 200, each stored exactly once; answers %v", n, s.statusCounts())
}

// TestChaosPartialPutRecordsFailures: every Kinesis client of the pipeline (ingest → events,
// identity → changes, segments → activations) sees about 30% of its PutRecords entries refused
// on the wire. Publishers retry only the refused entries, a call whose events could not all be
// written is answered 5xx and resent, and every event answered 200 is stored exactly once.
func TestChaosPartialPutRecordsFailures(t *testing.T) {
	base := testenv.Clients(t)
	flaky := &testenv.FlakyTransport{Reject: func([]byte) bool { return rand.IntN(10) < 3 }}
	flakyKinesis := kinesis.New(base.Kinesis.Options(), func(o *kinesis.Options) { o.HTTPClient = flaky })
	stack := chaosStack(t, func(string) awsenv.Clients { return awsenv.Clients{DynamoDB: base.DynamoDB, Kinesis: flakyKinesis} })
	s := newChaosSender(stack.URL, chaosWriteKey)
	evs := chaosEvents("flaky", 10, 20)
	failed := s.sendAll(evs, 10, 4, nil)
	s.resend(t, failed, 60*time.Second)
	n := chaosExpectExactlyOnce(t, stack.URL, chaosAdminToken, s, evs, 90*time.Second)
	if flaky.Rejected() == 0 {
		t.Fatal("no PutRecords entry was refused: the fault was not injected")
	}
	t.Logf("%d events answered 200, each stored exactly once; %d entries refused on the wire; answers %v", n, flaky.Rejected(), s.statusCounts())
}

// chaosRunner is `cmd/local` built and run as a separate process on private ports.
type chaosRunner struct {
	t    *testing.T
	bin  string
	env  []string
	addr string
	logs []string // stderr files, one per run
	cmd  *exec.Cmd
}

func newChaosRunner(t *testing.T) *chaosRunner {
	t.Helper()
	root, err := emulator.RepoRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "cdp-local")
	build := exec.Command("go", "build", "-o", bin, "./cmd/local")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build cmd/local: %v\n%s", err, out)
	}
	port, err := emulator.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := chaosConfig()
	r := &chaosRunner{t: t, bin: bin, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	r.env = append(os.Environ(),
		"CDP_HTTP_ADDR="+r.addr, "CDP_DEV_WRITE_KEY="+chaosWriteKey, "CDP_DEV_ADMIN_TOKEN="+chaosAdminToken,
		"CDP_TABLE="+cfg.Table, "CDP_EVENTS_STREAM="+cfg.EventsStream, "CDP_CHANGES_STREAM="+cfg.ChangesStream,
		"CDP_ACTIVATIONS_STREAM="+cfg.ActivationsStream, "LOG_LEVEL=debug",
		"CDP_ARCHIVE_DIR="+t.TempDir(), // not the default .archive in the package's folder
	)
	t.Cleanup(r.stop)
	return r
}

// start runs the runner and waits until it accepts connections.
func (r *chaosRunner) start() {
	r.t.Helper()
	logFile := filepath.Join(r.t.TempDir(), fmt.Sprintf("runner-%d.log", len(r.logs)))
	f, err := os.Create(logFile)
	if err != nil {
		r.t.Fatal(err)
	}
	defer f.Close()
	r.logs = append(r.logs, logFile)
	r.cmd = exec.Command(r.bin)
	r.cmd.Env, r.cmd.Stdout, r.cmd.Stderr = r.env, io.Discard, f
	if err := r.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", r.addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("runner not listening on %s within 60s", r.addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill SIGKILLs the runner and waits until it is gone.
func (r *chaosRunner) kill() {
	_ = r.cmd.Process.Signal(syscall.SIGKILL)
	_ = r.cmd.Wait()
	r.cmd = nil
}

func (r *chaosRunner) stop() {
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { _ = r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.kill()
	}
	r.cmd = nil
}

// expectJSONLogs requires every line the runner logged to be a JSON object with a level.
func (r *chaosRunner) expectJSONLogs() {
	r.t.Helper()
	lines := 0
	for _, file := range r.logs {
		b, err := os.ReadFile(file)
		if err != nil {
			r.t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var rec struct{ Level, Msg string }
			if err := json.Unmarshal(sc.Bytes(), &rec); err != nil || rec.Level == "" {
				r.t.Fatalf("%s: not a JSON log line: %q", filepath.Base(file), sc.Text())
			}
			lines++
		}
	}
	if lines == 0 {
		r.t.Fatal("the runner logged nothing at LOG_LEVEL=debug")
	}
}

// TestChaosRunnerKilledMidBurst: the local runner (cmd/local, a separate process) is SIGKILLed
// while four clients send a burst, and started again. Calls made while it is down fail and are
// resent; every event answered 200 is stored exactly once. The runner resumes its pollers from
// their checkpoints, and logs JSON lines at LOG_LEVEL.
func TestChaosRunnerKilledMidBurst(t *testing.T) {
	r := newChaosRunner(t)
	r.start()
	s := newChaosSender("http://"+r.addr, chaosWriteKey)
	evs := chaosEvents("kill", 10, 30)
	var once sync.Once
	restarted := make(chan struct{})
	failed := s.sendAll(evs, 3, 4, func(acked int) {
		if acked >= len(evs)/3 {
			once.Do(func() {
				go func() {
					defer close(restarted)
					r.kill()
					r.start()
				}()
			})
		}
	})
	<-restarted
	t.Logf("burst: %d of %d events refused while the runner was down", len(failed), len(evs))
	s.resend(t, failed, 60*time.Second)
	n := chaosExpectExactlyOnce(t, "http://"+r.addr, chaosAdminToken, s, evs, 90*time.Second)
	t.Logf("%d events answered 200, each stored exactly once; answers %v", n, s.statusCounts())
	r.expectJSONLogs()
}
