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
	for name, q := range s.FailureQueues {
		suppress(q, "AwsSolutions-SQS3",
			"This queue is itself the dead-letter store: the on-failure destination of the "+name+
				" Kinesis trigger. Nothing consumes it automatically; an operator lists and replays "+
				"it, and its depth is alarmed, so a second DLQ behind it would add nothing.")
	}
}
