package infra

import (
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambdaeventsources"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/jsii-runtime-go"
)

// Failure handling for every Kinesis trigger. A record is retried a bounded number of times
// and then parked, so one poison record never blocks a shard, and never silently dropped.
const (
	// RetryAttempts bounds retries of a failing batch; with bisection and
	// ReportBatchItemFailures the failing record is isolated well before this runs out.
	RetryAttempts = 5
	// maxRecordAgeCap stops a shard waiting on a broken deploy for more than a day; the
	// skipped batches' metadata goes to the failure queue and the records stay replayable for
	// the rest of the stream retention (see MaxRecordAge).
	maxRecordAgeCap = 24 * time.Hour
	// failureRetention is SQS's maximum: the operator's window to replay parked batches.
	failureRetention = 14 * 24 * time.Hour
)

// Table actions, listed rather than taken from grantReadWriteData so the index grant can
// name gsi1 exactly instead of index/*.
var (
	tableReadActions = []string{
		"dynamodb:BatchGetItem", "dynamodb:ConditionCheckItem", "dynamodb:DescribeTable",
		"dynamodb:GetItem", "dynamodb:Query", "dynamodb:Scan",
	}
	tableWriteActions = []string{
		"dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem",
	}
	// countsActions write the console's per-minute counts and rejection samples.
	countsActions = []string{"dynamodb:BatchWriteItem", "dynamodb:UpdateItem"}
)

// newFunction builds one function and everything it owns from its spec.
func (s *Stack) newFunction(spec FunctionSpec, env map[string]*string) awslambda.Function {
	id := exportName(spec.Name)
	cfg := s.Config

	// An explicit log group with a retention, instead of the LogRetention custom resource
	// (an extra Node.js Lambda and a managed-policy role).
	logs := awslogs.NewLogGroup(s.Stack, jsii.String(id+"Logs"), &awslogs.LogGroupProps{
		Retention: retention(cfg.LogRetentionDays),
		// Logs can hold personal data; they must not outlive the stack that wrote them.
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})

	// An own role with inline, resource-scoped statements: the default role would attach the
	// AWSLambdaBasicExecutionRole managed policy, which allows logs on every log group.
	role := awsiam.NewRole(s.Stack, jsii.String(id+"Role"), &awsiam.RoleProps{
		AssumedBy:   awsiam.NewServicePrincipal(jsii.String("lambda.amazonaws.com"), nil),
		Description: jsii.String("cdp " + spec.Name + " function"),
	})
	logs.GrantWrite(role)
	s.LogGroups[spec.Name], s.Roles[spec.Name] = logs, role

	memory := spec.MemoryMB
	if memory == 0 {
		memory = 256
	}
	timeout := spec.Timeout
	if timeout == 0 {
		timeout = 30 * time.Second
	}
	fn := awslambda.NewFunction(s.Stack, jsii.String(id+"Function"), &awslambda.FunctionProps{
		Description:  jsii.String(spec.Description),
		Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
		Architecture: awslambda.Architecture_ARM_64(),
		Handler:      jsii.String("bootstrap"),
		Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(s.assetRoot, spec.Name)), nil),
		MemorySize:   jsii.Number(float64(memory)),
		Timeout:      awscdk.Duration_Seconds(jsii.Number(timeout.Seconds())),
		Environment:  &env,
		Role:         role,
		LogGroup:     logs,
	})

	s.grantTable(role, spec.Table)
	if spec.PrivacyKey {
		s.PrivacyKey.GrantRead(role, nil)
		fn.AddEnvironment(jsii.String("CDP_PRIVACY_KEY_SECRET"), s.PrivacyKey.SecretArn(), nil)
	}
	if spec.Archive {
		s.grantArchive(role)
		fn.AddEnvironment(jsii.String("CDP_ARCHIVE_BUCKET"), s.Archive.Bucket.BucketName(), nil)
	}
	for _, name := range spec.Puts {
		s.Streams[name].GrantWrite(role)
	}
	for _, name := range spec.Reads {
		s.Streams[name].GrantRead(role)
	}
	if spec.Counts && spec.Table == TableRead {
		role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
			Actions:   jsii.Strings(countsActions...),
			Resources: jsii.Strings(*s.Table.TableArn()),
		}))
	}
	if spec.Trigger != "" {
		s.addTrigger(fn, spec)
	}
	if spec.Schedule != "" {
		rule := awsevents.NewRule(s.Stack, jsii.String(id+"Schedule"), &awsevents.RuleProps{
			Description: jsii.String("cdp " + spec.Name + ": " + spec.Schedule),
			Schedule:    awsevents.Schedule_Expression(jsii.String(spec.Schedule)),
		})
		rule.AddTarget(awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
			// A tick that is a minute late is superseded by the next one; do not pile them up.
			MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(1)),
			RetryAttempts: jsii.Number(2),
		}))
		s.Schedules[spec.Name] = rule
	}
	return fn
}

// grantTable scopes table access to the table and its one index.
func (s *Stack) grantTable(role awsiam.Role, access TableAccess) {
	if access == TableNone {
		return
	}
	actions := append([]string{}, tableReadActions...)
	if access == TableReadWrite {
		actions = append(actions, tableWriteActions...)
	}
	role.AddToPrincipalPolicy(awsiam.NewPolicyStatement(&awsiam.PolicyStatementProps{
		Actions: jsii.Strings(actions...),
		Resources: jsii.Strings(
			*s.Table.TableArn(),
			*s.Table.TableArn()+"/index/"+GSI1,
		),
	}))
}

// MaxRecordAge is how long a trigger retries a failing batch before parking it: half the
// stream retention, at most a day, so a parked batch's records stay in the stream at least as
// long again (12 h with the default 24 h retention) for the operator to replay them.
func MaxRecordAge(retentionHours int) time.Duration {
	return min(maxRecordAgeCap, time.Duration(retentionHours)*time.Hour/2)
}

// addTrigger attaches the Kinesis event source and its failure queue.
func (s *Stack) addTrigger(fn awslambda.Function, spec FunctionSpec) {
	id := exportName(spec.Name)
	cfg := s.Config
	// One queue per consumer so an alarm names the stage that is failing and a replay knows
	// which stream to put the records back on. SQS rather than S3 for the queue-depth alarm
	// and because the messages are small (shard id and sequence numbers, not the records).
	q := awssqs.NewQueue(s.Stack, jsii.String(id+"Failures"), &awssqs.QueueProps{
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
		RetentionPeriod: awscdk.Duration_Seconds(jsii.Number(failureRetention.Seconds())),
		// It points into the retained streams; an idle queue costs nothing.
		RemovalPolicy: awscdk.RemovalPolicy_RETAIN,
	})
	s.FailureQueues[spec.Name] = q
	fn.AddEventSource(awslambdaeventsources.NewKinesisEventSource(s.Streams[spec.Trigger], &awslambdaeventsources.KinesisEventSourceProps{
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(float64(cfg.BatchSize)),
		MaxBatchingWindow:       awscdk.Duration_Seconds(jsii.Number(float64(cfg.MaxBatchingWindow))),
		ParallelizationFactor:   jsii.Number(float64(cfg.Parallelization)),
		BisectBatchOnError:      jsii.Bool(true),
		RetryAttempts:           jsii.Number(RetryAttempts),
		MaxRecordAge:            awscdk.Duration_Seconds(jsii.Number(MaxRecordAge(cfg.StreamRetention).Seconds())),
		ReportBatchItemFailures: jsii.Bool(true),
		OnFailure:               awslambdaeventsources.NewSqsDlq(q),
	}))
}

// environment is the same for every function: each finds every resource by name, so a
// function that gains a stream needs a grant, not a new variable.
func (s *Stack) environment() map[string]*string {
	return map[string]*string{
		"CDP_TABLE":              s.Table.TableName(),
		"CDP_EVENTS_STREAM":      s.Streams[StreamEvents].StreamName(),
		"CDP_CHANGES_STREAM":     s.Streams[StreamChanges].StreamName(),
		"CDP_ACTIVATIONS_STREAM": s.Streams[StreamActivations].StreamName(),
		"CDP_ALLOWED_ORIGINS":    jsii.String(strings.Join(s.Config.AllowedOrigins, ",")),
		"LOG_LEVEL":              jsii.String(s.Config.LogLevel),
	}
}

// retention maps days to the CDK enum; Config.Validate has already rejected other values.
func retention(days int) awslogs.RetentionDays {
	m := map[int]awslogs.RetentionDays{
		1: awslogs.RetentionDays_ONE_DAY, 3: awslogs.RetentionDays_THREE_DAYS,
		5: awslogs.RetentionDays_FIVE_DAYS, 7: awslogs.RetentionDays_ONE_WEEK,
		14: awslogs.RetentionDays_TWO_WEEKS, 30: awslogs.RetentionDays_ONE_MONTH,
		60: awslogs.RetentionDays_TWO_MONTHS, 90: awslogs.RetentionDays_THREE_MONTHS,
		120: awslogs.RetentionDays_FOUR_MONTHS, 150: awslogs.RetentionDays_FIVE_MONTHS,
		180: awslogs.RetentionDays_SIX_MONTHS, 365: awslogs.RetentionDays_ONE_YEAR,
		400: awslogs.RetentionDays_THIRTEEN_MONTHS, 545: awslogs.RetentionDays_EIGHTEEN_MONTHS,
		731: awslogs.RetentionDays_TWO_YEARS, 1096: awslogs.RetentionDays_THREE_YEARS,
		1827: awslogs.RetentionDays_FIVE_YEARS, 2192: awslogs.RetentionDays_SIX_YEARS,
		2557: awslogs.RetentionDays_SEVEN_YEARS, 2922: awslogs.RetentionDays_EIGHT_YEARS,
		3288: awslogs.RetentionDays_NINE_YEARS, 3653: awslogs.RetentionDays_TEN_YEARS,
	}
	return m[days]
}
