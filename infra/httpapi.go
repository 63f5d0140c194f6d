package infra

import (
	"encoding/json"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigateway"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsapigatewayv2integrations"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscertificatemanager"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/jsii-runtime-go"
)

// accessLogFields uses only variables HTTP APIs support (REST API's standard JSON format
// has some they reject). No headers: Authorization would carry write keys and tokens.
var accessLogFields = map[string]string{
	"requestId":          "$context.requestId",
	"requestTime":        "$context.requestTime",
	"sourceIp":           "$context.identity.sourceIp",
	"userAgent":          "$context.identity.userAgent",
	"method":             "$context.httpMethod",
	"routeKey":           "$context.routeKey",
	"path":               "$context.path",
	"status":             "$context.status",
	"protocol":           "$context.protocol",
	"responseLength":     "$context.responseLength",
	"responseLatency":    "$context.responseLatency",
	"integrationError":   "$context.integrationErrorMessage",
	"integrationLatency": "$context.integration.latency",
}

// accessLogSettings implements awsapigatewayv2.IAccessLogSettings.
type accessLogSettings struct {
	dest   awsapigatewayv2.IAccessLogDestination
	format awsapigateway.AccessLogFormat
}

func (a *accessLogSettings) Destination() awsapigatewayv2.IAccessLogDestination { return a.dest }
func (a *accessLogSettings) Format() awsapigateway.AccessLogFormat              { return a.format }

// newHTTPAPI creates the HTTP API (payload format 2.0), its $default stage and its routes.
func (s *Stack) newHTTPAPI(routes []Route) {
	cfg := s.Config
	api := awsapigatewayv2.NewHttpApi(s.Stack, jsii.String("HttpApi"), &awsapigatewayv2.HttpApiProps{
		ApiName:     jsii.String("cdp-" + cfg.Stage),
		Description: jsii.String("cdp tracking, Profile and admin API (" + cfg.Stage + ")"),
		// The stage is created below, with throttling and access logs.
		CreateDefaultStage: jsii.Bool(false),
	})
	s.API = api

	accessLogs := awslogs.NewLogGroup(s.Stack, jsii.String("HttpApiAccessLogs"), &awslogs.LogGroupProps{
		Retention:     retention(cfg.LogRetentionDays),
		RemovalPolicy: awscdk.RemovalPolicy_DESTROY,
	})
	format, err := json.Marshal(accessLogFields)
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	stageProps := &awsapigatewayv2.HttpStageProps{
		HttpApi: api,
		// $default, not a named stage: a named stage would prefix every path (/prod/v1/t) and
		// Segment clients expect /v1 at the root of their API host.
		StageName:  jsii.String("$default"),
		AutoDeploy: jsii.Bool(true),
		Throttle: &awsapigatewayv2.ThrottleSettings{
			RateLimit:  jsii.Number(cfg.ThrottleRateLimit),
			BurstLimit: jsii.Number(float64(cfg.ThrottleBurstLimit)),
		},
		AccessLogSettings: &accessLogSettings{
			dest:   awsapigatewayv2.NewLogGroupLogDestination(accessLogs),
			format: awsapigateway.AccessLogFormat_Custom(jsii.String(string(format))),
		},
	}
	if cfg.DomainName != "" {
		// From the ARN, never a lookup: synth stays credential-free.
		cert := awscertificatemanager.Certificate_FromCertificateArn(s.Stack, jsii.String("Certificate"), jsii.String(cfg.CertificateArn))
		s.Domain = awsapigatewayv2.NewDomainName(s.Stack, jsii.String("Domain"), &awsapigatewayv2.DomainNameProps{
			DomainName:  jsii.String(cfg.DomainName),
			Certificate: cert,
		})
		stageProps.DomainMapping = &awsapigatewayv2.DomainMappingOptions{DomainName: s.Domain}
	}
	s.Stage = awsapigatewayv2.NewHttpStage(s.Stack, jsii.String("DefaultStage"), stageProps)

	// One integration per function, shared by its routes.
	integrations := map[string]awsapigatewayv2integrations.HttpLambdaIntegration{}
	for _, r := range routes {
		in, ok := integrations[r.Function]
		if !ok {
			in = awsapigatewayv2integrations.NewHttpLambdaIntegration(
				jsii.String(exportName(r.Function)+"Integration"), s.Functions[r.Function],
				&awsapigatewayv2integrations.HttpLambdaIntegrationProps{
					PayloadFormatVersion: awsapigatewayv2.PayloadFormatVersion_VERSION_2_0(),
				})
			integrations[r.Function] = in
		}
		api.AddRoutes(&awsapigatewayv2.AddRoutesOptions{
			Path:        jsii.String(r.Path),
			Methods:     &[]awsapigatewayv2.HttpMethod{awsapigatewayv2.HttpMethod(r.Method)},
			Integration: in,
		})
	}
}

// apiURL is the base URL clients configure: the custom domain when there is one.
func (s *Stack) apiURL() *string {
	if s.Domain != nil {
		return jsii.String("https://" + s.Config.DomainName + "/")
	}
	return s.Stage.Url()
}
