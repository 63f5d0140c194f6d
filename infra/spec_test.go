package infra

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
)

func TestRealSpecs(t *testing.T) {
	if err := validateSpecs(Functions, Routes); err != nil {
		t.Fatal(err)
	}
	if err := validateSpecs(futureSpecs, Routes); err != nil {
		t.Fatal(err)
	}
	byName := map[string]FunctionSpec{}
	for _, f := range Functions {
		byName[f.Name] = f
	}
	// The contract from the issue, spelled out once more so a careless edit of the slice
	// shows up here rather than as an AccessDenied in production.
	if f := byName["ingest"]; f.Table != TableRead || !f.Counts || !reflectEqual(f.Puts, []string{StreamEvents}) || f.Trigger != "" || len(f.Reads) != 0 {
		t.Errorf("ingest: want table read (and the console's counts), puts [events], no trigger; got %+v", f)
	}
	if f := byName["api"]; f.Table != TableReadWrite || f.Trigger != "" || len(f.Puts) != 3 || !reflectEqual(f.Reads, []string{StreamEvents}) {
		t.Errorf("api: want table read/write, puts to all streams, reads events (Live events); got %+v", f)
	}
	if f := byName["identity"]; f.Table != TableReadWrite || f.Trigger != StreamEvents || !reflectEqual(f.Puts, []string{StreamChanges}) {
		t.Errorf("identity: want trigger events, table read/write, puts [changes]; got %+v", f)
	}
	if f := byName["segments"]; f.Table != TableReadWrite || f.Trigger != StreamChanges || !reflectEqual(f.Puts, []string{StreamActivations}) || f.Schedule == "" {
		t.Errorf("segments: want trigger changes, table read/write, puts [activations], a schedule; got %+v", f)
	}
	if f := byName["activation"]; f.Table != TableReadWrite || f.Trigger != StreamActivations || len(f.Puts) != 0 || f.Schedule == "" {
		t.Errorf("activation: want trigger activations, table read/write, no puts, a schedule; got %+v", f)
	}
	if f := byName["privacy"]; f.Table != TableReadWrite || f.Trigger != "" || !reflectEqual(f.Puts, []string{StreamEvents, StreamActivations}) || f.Schedule == "" || !f.PrivacyKey || !f.Archive {
		t.Errorf("privacy: want table read/write, no trigger, puts [events activations] (replays), a schedule, the privacy key, the archive; got %+v", f)
	}
	for _, f := range Functions {
		if f.PrivacyKey != (f.Name != "ingest") {
			t.Errorf("%s: every function but ingest hashes identifiers for the blocklist and needs the privacy key; PrivacyKey=%v", f.Name, f.PrivacyKey)
		}
	}
	for _, f := range Functions {
		if want := f.Name == "api" || f.Name == "privacy"; f.Archive != want {
			t.Errorf("%s: Archive=%v; only api (replay, dry run, inline privacy) and privacy (erase, export) read and rewrite the archive", f.Name, f.Archive)
		}
	}
	if len(Functions) != 6 {
		t.Errorf("want ingest, api, identity, segments, activation and privacy deployed; got %d functions", len(Functions))
	}
}

func reflectEqual(a, b []string) bool { return strings.Join(a, ",") == strings.Join(b, ",") }

func TestValidateSpecsRejectsMistakes(t *testing.T) {
	for _, c := range []struct {
		specs  []FunctionSpec
		routes []Route
		want   string
	}{
		{[]FunctionSpec{{Name: "Bad_Name"}}, nil, "must match"},
		{[]FunctionSpec{{Name: "a"}, {Name: "a"}}, nil, "declared twice"},
		{[]FunctionSpec{{Name: "a", Trigger: "clicks"}}, nil, "unknown trigger stream"},
		{[]FunctionSpec{{Name: "a", Puts: []string{"clicks"}}}, nil, "unknown stream"},
		{[]FunctionSpec{{Name: "a", Schedule: "every minute"}}, nil, "rate(...) or cron(...)"},
		{[]FunctionSpec{{Name: "a", Timeout: 16 * 60e9}}, nil, "timeout"},
		{[]FunctionSpec{{Name: "a"}}, []Route{{"GET", "/x", "b"}}, `no function "b"`},
		{[]FunctionSpec{{Name: "a"}}, []Route{{"FETCH", "/x", "a"}}, "unknown method"},
		{[]FunctionSpec{{Name: "a"}}, []Route{{"GET", "/x", "a"}, {"GET", "/x", "a"}}, "declared twice"},
	} {
		err := validateSpecs(c.specs, c.routes)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v %+v: want error with %q, got %v", c.specs, c.routes, c.want, err)
		}
	}
}

func TestNewStackNeedsBuiltBinaries(t *testing.T) {
	cfg := DefaultConfig()
	cfg.AssetRoot = filepath.Join(testDir, "empty-build")
	_, err := NewStack(awscdk.NewApp(nil), "cdp-missing", StackProps{Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("want an error telling to run make build, got %v", err)
	}
}

// TestIAMCheckerCatchesViolations proves TestIAMLeastPrivilege can fail: each hand-made
// template below breaks one rule and must be reported.
func TestIAMCheckerCatchesViolations(t *testing.T) {
	ingest := FunctionSpec{Name: "ingest", Table: TableRead, Puts: []string{StreamEvents}}
	names := map[string]string{"T": "table", "E": "stream:events", "C": "stream:changes", "L": "logs:ingest", "B": "bucket:archive"}
	roles := map[string]reviewedRole{"R": functionRole(ingest)}
	policy := func(action interface{}, resource interface{}) map[string]interface{} {
		return map[string]interface{}{"Resources": map[string]interface{}{
			"R": map[string]interface{}{"Type": "AWS::IAM::Role", "Properties": map[string]interface{}{}},
			"P": map[string]interface{}{"Type": "AWS::IAM::Policy", "Properties": map[string]interface{}{
				"Roles": []interface{}{map[string]interface{}{"Ref": "R"}},
				"PolicyDocument": map[string]interface{}{"Statement": []interface{}{
					map[string]interface{}{"Effect": "Allow", "Action": action, "Resource": resource},
				}},
			}},
		}}
	}
	att := func(id string) interface{} { return map[string]interface{}{"Fn::GetAtt": []interface{}{id, "Arn"}} }
	join := func(parts ...interface{}) interface{} {
		return map[string]interface{}{"Fn::Join": []interface{}{"", parts}}
	}
	for _, c := range []struct {
		name string
		tpl  map[string]interface{}
		want string
	}{
		{"star resource", policy("dynamodb:GetItem", "*"), "wildcard resource"},
		{"index wildcard", policy("dynamodb:Query", join(att("T"), "/index/*")), "wildcard resource"},
		{"star action", policy("dynamodb:*", att("T")), "wildcard action"},
		{"write on a read-only table", policy("dynamodb:PutItem", att("T")), "does not need"},
		{"put to a stream not in Puts", policy([]interface{}{"kinesis:PutRecords"}, []interface{}{att("E"), att("C")}), "on <stream:changes>"},
		{"unknown resource", policy("s3:GetObject", att("X")), "<unknown:X>"},
		{"archive objects without Archive", policy("s3:GetObject", join(att("B"), "/*")), "s3:GetObject on <bucket:archive>/*, which it does not need"},
		{"archive objects of one source", policy("s3:GetObject", join(att("B"), "/source=*")), "wildcard resource"},
		{"managed policy", map[string]interface{}{"Resources": map[string]interface{}{
			"R": map[string]interface{}{"Type": "AWS::IAM::Role", "Properties": map[string]interface{}{
				"ManagedPolicyArns": []interface{}{"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole"},
			}},
		}}, "managed policies"},
		{"stray role", map[string]interface{}{"Resources": map[string]interface{}{
			"Other": map[string]interface{}{"Type": "AWS::IAM::Role", "Properties": map[string]interface{}{}},
		}}, "belongs to no function"},
	} {
		problems, _ := reviewIAM(c.tpl, names, roles)
		if !strings.Contains(strings.Join(problems, "\n"), c.want) {
			t.Errorf("%s: want a problem mentioning %q, got %q", c.name, c.want, problems)
		}
	}
	// And the converse: a correct grant passes, and a missing one is reported.
	problems, granted := reviewIAM(policy([]interface{}{"kinesis:PutRecord", "kinesis:PutRecords"}, att("E")), names, roles)
	if len(problems) != 0 {
		t.Errorf("a correct grant was reported: %q", problems)
	}
	if m := missingGrants(functionRole(ingest), granted["R"]); !strings.Contains(strings.Join(m, "\n"), "dynamodb:GetItem on <table>") {
		t.Errorf("missing table read not reported: %q", m)
	}
	// A function with Archive may touch every object of the archive bucket, and must.
	archived := map[string]reviewedRole{"R": functionRole(FunctionSpec{Name: "api", Archive: true})}
	problems, granted = reviewIAM(policy([]interface{}{"s3:GetObject", "s3:PutObject"}, join(att("B"), "/*")), names, archived)
	if len(problems) != 0 {
		t.Errorf("the archive grant was reported: %q", problems)
	}
	if m := strings.Join(missingGrants(archived["R"], granted["R"]), "\n"); !strings.Contains(m, "s3:DeleteObject on <bucket:archive>/*") || !strings.Contains(m, "s3:ListBucket on <bucket:archive>") {
		t.Errorf("missing archive delete and list not reported: %q", m)
	}
}

// TestLambdaBinariesStayFreeOfCDK guards the rule that the CDK (a large module that needs
// Node at run time) never enters a Lambda binary's import graph.
func TestLambdaBinariesStayFreeOfCDK(t *testing.T) {
	root, _ := filepath.Abs("..")
	var patterns []string
	for _, dir := range []string{"functions", "internal"} {
		if _, err := os.Stat(filepath.Join(root, dir)); err == nil {
			patterns = append(patterns, "./"+dir+"/...")
		}
	}
	if len(patterns) == 0 {
		t.Skip("no functions/ or internal/ yet")
	}
	cmd := exec.Command("go", append([]string{"list", "-deps", "-e", "-f", "{{.ImportPath}}"}, patterns...)...)
	cmd.Dir = root
	// -e lists what it can even while another package is broken; a broken package fails
	// its own build and tests, not this check.
	out, err := cmd.Output()
	if err != nil && len(out) == 0 {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{
			"github.com/aws/aws-cdk-go/", "github.com/aws/jsii-runtime-go", "github.com/aws/constructs-go/",
			"github.com/cdklabs/", "github.com/serverless-cdp/cdp/infra",
		} {
			if strings.HasPrefix(dep, banned) {
				t.Errorf("%s is in the import graph of functions/ or internal/", dep)
			}
		}
	}
}

// TestRuntimeModuleFreeOfCDK guards the module split: infra/ has its own go.mod, so the root
// module's requirement graph (what the Lambdas, the local runner, the CLI, the benchmark and
// their tests resolve) holds neither the CDK nor the tooling its modules drag along.
func TestRuntimeModuleFreeOfCDK(t *testing.T) {
	root, _ := filepath.Abs("..")
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Path}}", "all")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -m all in %s: %v", root, err)
	}
	banned := []string{
		"github.com/aws/aws-cdk-go/", "github.com/aws/jsii-runtime-go", "github.com/aws/constructs-go/",
		// github.com/yuin/goldmark is no longer listed: golang.org/x/tools (which requires it)
		// enters the graph through gofakes3, the S3-compatible server the archive's tests run;
		// internal/app's TestFunctionDependencies checks that no Lambda links either.
		"github.com/cdklabs/", "golang.org/x/lint",
		"golang.org/x/tools/godoc", "golang.org/x/tools/cmd/godoc",
	}
	for _, mod := range strings.Fields(string(out)) {
		for _, b := range banned {
			if strings.HasPrefix(mod, b) {
				t.Errorf("%s is in the runtime module's dependency list (go list -m all at the root)", mod)
			}
		}
	}
}
