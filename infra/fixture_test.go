package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Synthesizing is the slow part (seconds per stack over the jsii bridge), so every test
// shares two stacks from one app, synthesized once:
//   - real:   the deployed Functions and Routes with the default config, as `cdk synth` makes it;
//   - future: the same functions with every optional config set the other way.

// futureSpecs is the deployed set; the "future" fixture varies the configuration, not the specs.
var futureSpecs = append([]FunctionSpec{}, Functions...)

func futureConfig(assets string) Config {
	c := DefaultConfig()
	c.Stage = "future"
	c.AssetRoot = assets
	c.LogRetentionDays = 90
	c.LogLevel = "debug"
	c.AllowedOrigins = []string{"https://www.example.com", "https://app.example.com"}
	c.ThrottleRateLimit, c.ThrottleBurstLimit = 50, 100
	c.StreamMode = StreamModeOnDemand
	c.StreamRetention = 168
	c.Dashboard = true
	c.BatchSize, c.MaxBatchingWindow, c.Parallelization = 250, 5, 4
	c.DeletionProtection = false
	c.ArchiveRetentionDays = 730
	c.DomainName = "api.example.com"
	c.CertificateArn = "arn:aws:acm:eu-west-1:123456789012:certificate/0a1b2c3d-0000-1111-2222-333344445555"
	c.AlarmTopicArn = "arn:aws:sns:eu-west-1:123456789012:cdp-ops"
	return c
}

type fixture struct {
	name   string
	stack  *Stack
	tpl    assertions.Template
	json   map[string]interface{}
	outdir string
}

// resources returns the template's resources of one type, by logical id.
func (f *fixture) resources(typ string) map[string]map[string]interface{} {
	out := map[string]map[string]interface{}{}
	for id, r := range f.json["Resources"].(map[string]interface{}) {
		m := r.(map[string]interface{})
		if m["Type"] == typ {
			out[id] = m
		}
	}
	return out
}

// id is the template's logical id of a construct's CloudFormation resource.
func (f *fixture) id(c constructs.IConstruct) string {
	el, ok := c.(awscdk.CfnElement) // an L1 is its own resource
	if !ok {
		el, ok = c.Node().DefaultChild().(awscdk.CfnElement)
	}
	if !ok {
		panic(fmt.Sprintf("%s has no CloudFormation resource", *c.Node().Path()))
	}
	return *f.stack.Stack.GetLogicalId(el)
}

var (
	checks                 atomic.Int64 // calls of check, reported at the end
	testDir                string
	fixOnce                sync.Once
	fixReal, fixFuture     *fixture
	fixErr                 error
	assetNames             = []string{"ingest", "api", "identity", "segments", "activation", "privacy"}
	enableAssetMetadataKey = "aws:cdk:enable-asset-metadata"
	annotationsFlag        = "@aws-cdk/core:annotationsInValidationReport"
)

func TestMain(m *testing.M) {
	var err error
	testDir, err = os.MkdirTemp("", "cdp-infra-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	if n := checks.Load(); n > 0 {
		fmt.Printf("infra: %d assertions-module checks\n", n)
	}
	jsii.Close()
	os.RemoveAll(testDir)
	os.Exit(code)
}

// fakeAssets writes build/<name>/bootstrap files whose content names the function, so a
// test can tell which directory each function's code came from.
func fakeAssets(dir string, names []string) error {
	for _, n := range names {
		if err := os.MkdirAll(filepath.Join(dir, n), 0o755); err != nil {
			return err
		}
		body := "#!/bin/sh\n# fake " + n + "\n"
		if err := os.WriteFile(filepath.Join(dir, n, "bootstrap"), []byte(body), 0o755); err != nil {
			return err
		}
	}
	return nil
}

// cdkJSONContext is the context block of the repository's cdk.json (the feature flags), so
// the tests synthesize exactly what the CLI does.
func cdkJSONContext() (map[string]interface{}, error) {
	b, err := os.ReadFile(filepath.Join("..", "cdk.json"))
	if err != nil {
		return nil, err
	}
	var doc struct {
		App     string                 `json:"app"`
		Context map[string]interface{} `json:"context"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("cdk.json: %w", err)
	}
	if doc.App == "" {
		return nil, fmt.Errorf("cdk.json has no app command")
	}
	return doc.Context, nil
}

// newTestApp makes an app with cdk.json's context, writing into a temp dir.
func newTestApp(outdir string) (awscdk.App, error) {
	ctx, err := cdkJSONContext()
	if err != nil {
		return nil, err
	}
	ctx[enableAssetMetadataKey] = true
	ctx["aws:cdk:enable-path-metadata"] = true
	// With this flag (set in cdk.json) an error annotation aborts synth, which is what
	// `cdk synth` should do; tests turn it off so synth completes and Annotations can list
	// every finding. The template is the same either way.
	ctx[annotationsFlag] = false
	return awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir), Context: &ctx}), nil
}

func buildFixtures() error {
	assets := filepath.Join(testDir, "build")
	if err := fakeAssets(assets, assetNames); err != nil {
		return err
	}
	outdir := filepath.Join(testDir, "cdk.out")
	app, err := newTestApp(outdir)
	if err != nil {
		return err
	}
	real := DefaultConfig()
	real.AssetRoot = assets
	rs, err := NewStack(app, "cdp-test", StackProps{Config: real})
	if err != nil {
		return err
	}
	fs, err := NewStack(app, "cdp-future", StackProps{Config: futureConfig(assets), Functions: futureSpecs})
	if err != nil {
		return err
	}
	ApplyChecks(app)
	app.Synth(nil)
	fixReal = &fixture{name: "real", stack: rs, outdir: outdir}
	fixFuture = &fixture{name: "future", stack: fs, outdir: outdir}
	for _, f := range []*fixture{fixReal, fixFuture} {
		f.tpl = assertions.Template_FromStack(f.stack.Stack, nil)
		f.json = *f.tpl.ToJSON()
	}
	return nil
}

// fixtures returns both synthesized stacks; the first caller pays for the synth.
func fixtures(t *testing.T) []*fixture {
	t.Helper()
	fixOnce.Do(func() {
		start := time.Now()
		defer func() {
			if r := recover(); r != nil {
				fixErr = fmt.Errorf("synth panicked: %v", r)
			}
			fmt.Fprintf(os.Stderr, "synthesized test stacks in %s\n", time.Since(start).Round(time.Millisecond))
		}()
		fixErr = buildFixtures()
	})
	if fixErr != nil {
		t.Fatalf("synth: %v", fixErr)
	}
	return []*fixture{fixReal, fixFuture}
}

// check runs one assertions-module call; those report a mismatch by panicking with the
// JavaScript error, which we turn into a test failure that names the check.
func check(t *testing.T, what string, fn func()) {
	t.Helper()
	checks.Add(1)
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s:\n%v", what, r)
		}
	}()
	fn()
}
