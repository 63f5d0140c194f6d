package infra

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestHTTPAPIStage(t *testing.T) {
	for _, f := range fixtures(t) {
		cfg := f.stack.Config
		check(t, f.name+": HTTP API with a throttled, logged $default stage", func() {
			f.tpl.ResourceCountIs(typ("AWS::ApiGatewayV2::Api"), jsii.Number(1))
			f.tpl.HasResourceProperties(typ("AWS::ApiGatewayV2::Api"), obj{
				"ProtocolType": "HTTP",
				// CORS is the functions' job (CDP_ALLOWED_ORIGINS); API Gateway's would answer
				// preflights itself and override their headers.
				"CorsConfiguration": assertions.Match_Absent(),
			})
			f.tpl.ResourceCountIs(typ("AWS::ApiGatewayV2::Stage"), jsii.Number(1))
			f.tpl.HasResourceProperties(typ("AWS::ApiGatewayV2::Stage"), obj{
				"StageName":  "$default",
				"AutoDeploy": true,
				"DefaultRouteSettings": obj{
					"ThrottlingRateLimit":  cfg.ThrottleRateLimit,
					"ThrottlingBurstLimit": cfg.ThrottleBurstLimit,
				},
				"AccessLogSettings": obj{
					"DestinationArn": assertions.Match_AnyValue(),
					"Format":         assertions.Match_StringLikeRegexp(jsii.String(`\$context\.requestId`)),
				},
			})
		})
	}
}

func TestCustomDomain(t *testing.T) {
	fixtures(t)
	real, future := fixReal, fixFuture
	check(t, "real: no custom domain by default", func() {
		real.tpl.ResourceCountIs(typ("AWS::ApiGatewayV2::DomainName"), jsii.Number(0))
	})
	check(t, "future: custom domain mapped to the stage", func() {
		future.tpl.HasResourceProperties(typ("AWS::ApiGatewayV2::DomainName"), obj{
			"DomainName": "api.example.com",
			"DomainNameConfigurations": []obj{{
				"CertificateArn": future.stack.Config.CertificateArn,
				"EndpointType":   "REGIONAL",
			}},
		})
		future.tpl.ResourceCountIs(typ("AWS::ApiGatewayV2::ApiMapping"), jsii.Number(1))
		future.tpl.HasOutput(typ("ApiUrl"), obj{"Value": "https://api.example.com/"})
		future.tpl.HasOutput(typ("CustomDomainTarget"), obj{})
	})
}

func TestOutputs(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		check(t, f.name+": outputs", func() {
			f.tpl.HasOutput(typ("ApiUrl"), obj{})
			f.tpl.HasOutput(typ("TableName"), obj{"Value": ref(f.id(s.Table))})
			for _, n := range StreamNames {
				f.tpl.HasOutput(typ(exportName(n)+"StreamName"), obj{"Value": ref(f.id(s.Streams[n]))})
			}
		})
	}
}
