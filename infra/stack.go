// Package infra is the AWS CDK app that deploys the CDP: one stack with the HTTP API, the
// Lambda functions, the Kinesis streams that chain them, the DynamoDB table, and the alarms
// and dashboard that watch them. Nothing outside infra/ may import it: the CDK module must
// stay out of the Lambda binaries.
package infra

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskinesis"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssecretsmanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// StackProps configures NewStack.
type StackProps struct {
	awscdk.StackProps
	Config Config
	// Functions and Routes default to the package's Functions and Routes; tests pass their
	// own to exercise specs that are not deployed yet.
	Functions []FunctionSpec
	Routes    []Route
}

// Stack is the deployed CDP plus handles on its parts, for tests and for outputs.
type Stack struct {
	awscdk.Stack
	Config        Config
	Specs         []FunctionSpec
	Table         awsdynamodb.Table
	PrivacyKey    awssecretsmanager.Secret // keys the privacy blocklist's and audit log's hashes
	Archive       *Archive                 // the raw event archive: S3 bucket filled by Firehose
	Streams       map[string]awskinesis.Stream
	Functions     map[string]awslambda.Function
	Roles         map[string]awsiam.Role
	LogGroups     map[string]awslogs.LogGroup
	FailureQueues map[string]awssqs.Queue
	Schedules     map[string]awsevents.Rule
	API           awsapigatewayv2.HttpApi
	Stage         awsapigatewayv2.HttpStage
	Domain        awsapigatewayv2.DomainName
	Alarms        []awscloudwatch.Alarm
	Dashboard     awscloudwatch.Dashboard // nil unless Config.Dashboard

	assetRoot  string
	alarmTopic awssns.ITopic
}

// NewStack builds the whole CDP. It is environment-agnostic (no account or region, no
// lookups), so `cdk synth` works from a fresh clone without AWS credentials.
func NewStack(scope constructs.Construct, id string, props StackProps) (*Stack, error) {
	specs, routes := props.Functions, props.Routes
	if specs == nil {
		specs = Functions
	}
	if routes == nil {
		routes = Routes
	}
	if err := props.Config.Validate(); err != nil {
		return nil, err
	}
	if err := validateSpecs(specs, routes); err != nil {
		return nil, err
	}
	root, err := filepath.Abs(props.Config.AssetRoot)
	if err != nil {
		return nil, err
	}
	if err := checkAssets(root, specs); err != nil {
		return nil, err
	}

	sp := props.StackProps
	if sp.Description == nil {
		sp.Description = jsii.String("Serverless CDP (" + props.Config.Stage + ")")
	}
	s := &Stack{
		Stack:         awscdk.NewStack(scope, jsii.String(id), &sp),
		Config:        props.Config,
		Specs:         specs,
		Streams:       map[string]awskinesis.Stream{},
		Functions:     map[string]awslambda.Function{},
		Roles:         map[string]awsiam.Role{},
		LogGroups:     map[string]awslogs.LogGroup{},
		FailureQueues: map[string]awssqs.Queue{},
		Schedules:     map[string]awsevents.Rule{},
		assetRoot:     root,
	}
	awscdk.Tags_Of(s.Stack).Add(jsii.String("project"), jsii.String("serverless-cdp"), nil)
	awscdk.Tags_Of(s.Stack).Add(jsii.String("cdp:stage"), jsii.String(props.Config.Stage), nil)

	s.Table = newTable(s.Stack, s.Config)
	for _, name := range StreamNames {
		s.Streams[name] = newStream(s.Stack, name, s.Config)
	}
	s.PrivacyKey = newPrivacyKey(s.Stack)
	s.Archive = s.newArchive()
	env := s.environment()
	for _, spec := range specs {
		s.Functions[spec.Name] = s.newFunction(spec, env)
	}
	s.newHTTPAPI(routes)
	s.newMonitoring(specs)
	s.outputs()
	s.suppressNagFindings()
	return s, nil
}

// checkAssets fails early, with the fix, when the Lambda binaries have not been built.
func checkAssets(root string, specs []FunctionSpec) error {
	for _, spec := range specs {
		p := filepath.Join(root, spec.Name, "bootstrap")
		if fi, err := os.Stat(p); err != nil || fi.IsDir() {
			return fmt.Errorf("missing Lambda binary %s: run `make build` first (or set -c %s=DIR)", p, CtxAssetRoot)
		}
	}
	return nil
}

func (s *Stack) outputs() {
	out := func(id string, value *string, desc string) {
		awscdk.NewCfnOutput(s.Stack, jsii.String(id), &awscdk.CfnOutputProps{
			Value: value, Description: jsii.String(desc),
		})
	}
	out("ApiUrl", s.apiURL(), "Base URL for SDKs (apiHost), the Profile API and the admin API")
	if s.Domain != nil {
		out("CustomDomainTarget", s.Domain.RegionalDomainName(),
			"Point a CNAME (or alias) for "+s.Config.DomainName+" at this name")
	}
	out("TableName", s.Table.TableName(), "DynamoDB table (CDP_TABLE)")
	out("ArchiveBucketName", s.Archive.Bucket.BucketName(),
		"S3 bucket of the raw event archive (CDP_ARCHIVE_BUCKET): source=<id>/dt=YYYY-MM-DD/hour=HH/*.json.gz")
	for _, name := range StreamNames {
		out(exportName(name)+"StreamName", s.Streams[name].StreamName(), "Kinesis stream "+name)
	}
	for _, spec := range s.Specs {
		if q, ok := s.FailureQueues[spec.Name]; ok {
			out(exportName(spec.Name)+"FailureQueueUrl", q.QueueUrl(),
				"Parked batches of the "+spec.Trigger+" stream that "+spec.Name+" could not process")
		}
	}
	if s.Dashboard != nil {
		out("DashboardName", s.Dashboard.DashboardName(), "CloudWatch dashboard")
	}
}
