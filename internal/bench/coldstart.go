package bench

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"
)

// HelloWorld is the reference function measured next to ours: aws-lambda-go and nothing else.
const HelloWorld = "helloworld"

// ColdStart is one function's measurements.
type ColdStart struct {
	Samples  []float64 `json:"samples_ms"`
	MedianMs float64   `json:"median_ms"`
	MinMs    float64   `json:"min_ms"`
}

// buildFunctions builds every functions/<name> and the hello-world function into dir, for
// linux/goarch, the way `make build` does, and returns name → path.
func buildFunctions(ctx context.Context, root, dir, goarch string) (map[string]string, error) {
	entries, err := os.ReadDir(filepath.Join(root, "functions"))
	if err != nil {
		return nil, err
	}
	pkgs := []string{"./internal/bench/helloworld"}
	names := []string{HelloWorld}
	for _, e := range entries {
		if e.IsDir() {
			pkgs = append(pkgs, "./functions/"+e.Name())
			names = append(names, e.Name())
		}
	}
	args := append([]string{"build", "-tags", "lambda.norpc", "-ldflags", "-s -w", "-trimpath", "-o", dir + string(os.PathSeparator)}, pkgs...)
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("go build (GOARCH=%s): %v\n%s", goarch, err, out)
	}
	paths := map[string]string{}
	for _, n := range names {
		paths[n] = filepath.Join(dir, n)
	}
	return paths, nil
}

// binarySizes builds the arm64 binaries deployed to Lambda and returns their sizes in bytes.
func binarySizes(ctx context.Context, root string) (map[string]int64, error) {
	dir, err := os.MkdirTemp("", "cdp-bench-arm64-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	paths, err := buildFunctions(ctx, root, dir, "arm64")
	if err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	for n, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			return nil, err
		}
		sizes[n] = fi.Size()
	}
	return sizes, nil
}

// runtimeAPI is the smallest Lambda Runtime API: it notes when a process asks for its first
// invocation and keeps the request open until the process is stopped.
type runtimeAPI struct {
	addr  string
	first chan time.Time
	srv   *http.Server
}

func startRuntimeAPI() (*runtimeAPI, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	rt := &runtimeAPI{addr: ln.Addr().String(), first: make(chan time.Time, 16)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /2018-06-01/runtime/invocation/next", func(w http.ResponseWriter, r *http.Request) {
		rt.first <- time.Now()
		<-r.Context().Done()
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusAccepted) })
	rt.srv = &http.Server{Handler: mux}
	go func() { _ = rt.srv.Serve(ln) }()
	return rt, nil
}

// measureColdStarts runs each binary runs times: the time from exec to its first
// GET /runtime/invocation/next, i.e. the function's init (process start, Go runtime, config,
// AWS clients, wiring) until it is ready to serve an invocation.
func measureColdStarts(ctx context.Context, paths map[string]string, env []string, runs int) (map[string]ColdStart, error) {
	rt, err := startRuntimeAPI()
	if err != nil {
		return nil, err
	}
	defer rt.srv.Close()
	names := make([]string, 0, len(paths))
	for n := range paths {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]ColdStart{}
	// Interleave functions so background load affects them alike.
	for i := 0; i < runs; i++ {
		for _, n := range names {
			d, err := coldStartOnce(ctx, rt, n, paths[n], env)
			if err != nil {
				return nil, err
			}
			cs := out[n]
			cs.Samples = append(cs.Samples, d)
			out[n] = cs
		}
	}
	for n, cs := range out {
		s := append([]float64(nil), cs.Samples...)
		sort.Float64s(s)
		cs.MinMs, cs.MedianMs = s[0], s[len(s)/2]
		out[n] = cs
	}
	return out, nil
}

func coldStartOnce(ctx context.Context, rt *runtimeAPI, name, path string, env []string) (float64, error) {
	for len(rt.first) > 0 {
		<-rt.first
	}
	cmd := exec.Command(path)
	cmd.Env = append(append([]string{}, env...),
		"AWS_LAMBDA_RUNTIME_API="+rt.addr,
		"AWS_LAMBDA_FUNCTION_NAME="+name,
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+fmt.Sprint(LambdaMemoryMB),
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"_HANDLER=bootstrap",
	)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("cold start %s: %w", name, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
		<-exited
	}()
	select {
	case at := <-rt.first:
		return ms(at.Sub(start)), nil
	case err := <-exited:
		exited <- err
		return 0, fmt.Errorf("cold start %s: exited before asking for an invocation: %v\n%s", name, err, stderr.String())
	case <-time.After(15 * time.Second):
		return 0, fmt.Errorf("cold start %s: no invocation request within 15s\n%s", name, stderr.String())
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// ColdStarts builds the functions for this machine and measures them, and builds the arm64
// binaries for their sizes.
func ColdStarts(ctx context.Context, root string, env []string, runs int) (map[string]ColdStart, map[string]int64, error) {
	dir, err := os.MkdirTemp("", "cdp-bench-host-")
	if err != nil {
		return nil, nil, err
	}
	defer os.RemoveAll(dir)
	paths, err := buildFunctions(ctx, root, dir, runtime.GOARCH)
	if err != nil {
		return nil, nil, err
	}
	cs, err := measureColdStarts(ctx, paths, env, runs)
	if err != nil {
		return nil, nil, err
	}
	sizes, err := binarySizes(ctx, root)
	return cs, sizes, err
}
