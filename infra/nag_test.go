package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/aws-cdk-go/awscdk/v2/cxapi"
	"github.com/aws/jsii-runtime-go"
)

var awsSolutions = assertions.Match_StringLikeRegexp(jsii.String("AwsSolutions-.*"))

func messages(ms *[]*cxapi.SynthesisMessage) []string {
	var out []string
	if ms == nil {
		return out
	}
	for _, m := range *ms {
		out = append(out, *m.Id+": "+strings.SplitN(m.Entry.Data.(string), "\n", 2)[0])
	}
	return out
}

func TestNoUnsuppressedNagErrors(t *testing.T) {
	for _, f := range fixtures(t) {
		a := assertions.Annotations_FromStack(f.stack.Stack)
		for _, m := range messages(a.FindError(jsii.String("*"), awsSolutions)) {
			t.Errorf("%s: cdk-nag error %s", f.name, m)
		}
		// Warnings do not fail the build, but show them so they are seen.
		for _, m := range messages(a.FindWarning(jsii.String("*"), awsSolutions)) {
			t.Logf("%s: cdk-nag warning %s", f.name, m)
		}
	}
}

// badStack is a stack cdk-nag must reject: an unencrypted stream and a plain-HTTP queue.
func badStack(app awscdk.App) awscdk.Stack {
	stack := awscdk.NewStack(app, jsii.String("bad"), nil)
	awskinesis.NewStream(stack, jsii.String("Plain"), &awskinesis.StreamProps{
		Encryption: awskinesis.StreamEncryption_UNENCRYPTED,
	})
	awssqs.NewQueue(stack, jsii.String("Http"), &awssqs.QueueProps{EnforceSSL: jsii.Bool(false)})
	ApplyChecks(app)
	return stack
}

var badFindings = []string{"AwsSolutions-KDS1", "AwsSolutions-SQS4", "AwsSolutions-SQS3"}

// TestNagCatchesViolations proves the check above can fail: the same ApplyChecks on a bad
// stack must report errors.
func TestNagCatchesViolations(t *testing.T) {
	app, err := newTestApp(filepath.Join(testDir, "bad.out"))
	if err != nil {
		t.Fatal(err)
	}
	stack := badStack(app)
	got := strings.Join(messages(assertions.Annotations_FromStack(stack).FindError(jsii.String("*"), awsSolutions)), "\n")
	for _, want := range badFindings {
		if !strings.Contains(got, want) {
			t.Errorf("cdk-nag did not report %s; it reported:\n%s", want, got)
		}
	}
}

// TestSynthFailsOnNagErrors checks that with cdk.json's flags, as the CLI runs the app, an
// unsuppressed finding aborts synth: `cdk synth` and `cdk deploy` cannot ship it.
func TestSynthFailsOnNagErrors(t *testing.T) {
	ctx, err := cdkJSONContext()
	if err != nil {
		t.Fatal(err)
	}
	if ctx[annotationsFlag] != true {
		t.Fatalf("cdk.json should set %s so nag errors fail synth", annotationsFlag)
	}
	outdir := filepath.Join(testDir, "bad-cli.out")
	app := awscdk.NewApp(&awscdk.AppProps{Outdir: jsii.String(outdir), Context: &ctx})
	badStack(app)
	// The CDK prints the validation report to the console; say where it comes from.
	fmt.Println("TestSynthFailsOnNagErrors: the cdk-nag ERROR lines below come from a deliberately bad stack")
	defer func() {
		r := recover()
		if r == nil || !strings.Contains(fmt.Sprint(r), "ValidationFailed") {
			t.Fatalf("synth should fail validation, got %v", r)
		}
		report, err := os.ReadFile(filepath.Join(outdir, "validation-report.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range badFindings {
			if !strings.Contains(string(report), want) {
				t.Errorf("validation report lacks %s", want)
			}
		}
	}()
	app.Synth(nil)
}
