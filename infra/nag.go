package infra

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
	"github.com/cdklabs/cdk-nag-go/cdknag/v2"
)

// ApplyChecks runs cdk-nag's AwsSolutions pack over everything under scope at synth time.
// The app and the tests both call it, so a finding fails `go test` before it reaches a deploy.
func ApplyChecks(scope constructs.IConstruct) {
	awscdk.Aspects_Of(scope).Add(cdknag.NewAwsSolutionsChecks(&cdknag.NagPackProps{
		Verbose: jsii.Bool(true),
	}), nil)
}

// suppress records a justified exception; cdk-nag requires the reason, and so do we.
func suppress(c constructs.IConstruct, id, reason string) {
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{
		{Id: jsii.String(id), Reason: jsii.String(reason)},
	}, jsii.Bool(true))
}

// archiveObjects matches cdk-nag's name for "every object of the archive bucket" (the
// bucket's logical id starts with its construct id, Archive, followed by a hash).
var archiveObjects = &cdknag.RegexAppliesTo{Regex: jsii.String(`/^Resource::<Archive[0-9A-F]{8}\.Arn>\/\*$/`)}

// suppressArchiveObjects records why a role may act on every object of the archive bucket.
func suppressArchiveObjects(c constructs.IConstruct, who string) {
	cdknag.NagSuppressions_AddResourceSuppressions(c, &[]*cdknag.NagPackSuppression{{
		Id: jsii.String("AwsSolutions-IAM5"),
		Reason: jsii.String(who + " works on archive objects whose keys (source, day, hour, " +
			"object name) are only known at run time; the grant is limited to this one bucket's " +
			"objects and to the listed actions."),
		AppliesTo: &[]interface{}{archiveObjects},
	}}, jsii.Bool(true))
}

// suppressNagFindings lists every exception to AwsSolutions in one place.
func (s *Stack) suppressNagFindings() {
	suppress(s.API, "AwsSolutions-APIG4",
		"Authentication is part of the public contract and is done in the functions: the tracking "+
			"API takes Segment write keys (HTTP Basic user or body writeKey, stored hashed), the "+
			"Profile API Basic tokens and the admin API bearer tokens. API Gateway authorizers cannot "+
			"read a key from the JSON or text/plain body analytics.js sends, and CORS preflights must "+
			"stay unauthenticated.")
	suppress(s.PrivacyKey, "AwsSolutions-SMG4",
		"The privacy key keys the HMACs of the suppression list and the privacy audit log, which "+
			"are compared, never decrypted: rotating it would make every stored hash unmatchable "+
			"and silently lift every suppression. It is not a credential to any service.")
	suppress(s.Archive.LogBucket, "AwsSolutions-S1",
		"This is the archive bucket's server access log bucket; logging it into itself (or into "+
			"a third bucket) would add cost and no audit value.")
	suppress(s.Archive.Delivery, "AwsSolutions-KDF1",
		"The delivery stream's source is the events stream (KinesisStreamAsSource), for which "+
			"Firehose does not accept DeliveryStreamEncryptionConfigurationInput: the records are "+
			"encrypted at rest in the stream (aws/kinesis) and in the bucket (SSE-S3), and in "+
			"transit with TLS.")
	suppressArchiveObjects(s.Archive.Policy, "Firehose")
	for _, spec := range s.Specs {
		if spec.Archive {
			suppressArchiveObjects(s.Roles[spec.Name], "The "+spec.Name+" function (replay, dry run, privacy)")
		}
	}
	for name, q := range s.FailureQueues {
		suppress(q, "AwsSolutions-SQS3",
			"This queue is itself the dead-letter store: the on-failure destination of the "+name+
				" Kinesis trigger. Nothing consumes it automatically; an operator lists and replays "+
				"it, and its depth is alarmed, so a second DLQ behind it would add nothing.")
	}
}
