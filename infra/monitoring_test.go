package infra

import (
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"
)

func TestAlarms(t *testing.T) {
	for _, f := range fixtures(t) {
		s := f.stack
		want := 1 // HTTP API 5xx
		for _, spec := range s.Specs {
			fn := obj{"Name": "FunctionName", "Value": ref(f.id(s.Functions[spec.Name]))}
			metrics := []string{"Errors", "Throttles"}
			if spec.Trigger != "" {
				metrics = append(metrics, "IteratorAge")
			}
			for _, m := range metrics {
				props := obj{"Namespace": "AWS/Lambda", "MetricName": m, "Dimensions": []obj{fn}}
				if m == "IteratorAge" {
					props["Threshold"] = IteratorAgeAlarmMillis
				}
				check(t, f.name+": "+m+" alarm for "+spec.Name, func() {
					f.tpl.HasResourceProperties(typ("AWS::CloudWatch::Alarm"), props)
				})
				want++
			}
			if spec.Trigger != "" {
				check(t, f.name+": dead-letter alarm for "+spec.Name, func() {
					f.tpl.HasResourceProperties(typ("AWS::CloudWatch::Alarm"), obj{
						"Namespace":  "AWS/SQS",
						"MetricName": "ApproximateNumberOfMessagesVisible",
						"Dimensions": []obj{{"Name": "QueueName", "Value": arnOrAtt(f.id(s.FailureQueues[spec.Name]), "QueueName")}},
						"Threshold":  1,
					})
				})
				want++
			}
		}
		check(t, f.name+": HTTP API 5xx alarm", func() {
			f.tpl.HasResourceProperties(typ("AWS::CloudWatch::Alarm"), obj{
				"Namespace": "AWS/ApiGateway", "MetricName": "5xx",
			})
		})
		check(t, f.name+": archive delivery freshness alarm", func() {
			f.tpl.HasResourceProperties(typ("AWS::CloudWatch::Alarm"), obj{
				"Namespace":          "AWS/Firehose",
				"MetricName":         "DeliveryToS3.DataFreshness",
				"Dimensions":         []obj{{"Name": "DeliveryStreamName", "Value": ref(f.id(s.Archive.Delivery))}},
				"Statistic":          "Maximum",
				"Threshold":          ArchiveFreshnessAlarmSeconds,
				"ComparisonOperator": "GreaterThanOrEqualToThreshold",
				"TreatMissingData":   "notBreaching",
			})
		})
		want++
		check(t, f.name+": alarm count", func() {
			f.tpl.ResourceCountIs(typ("AWS::CloudWatch::Alarm"), jsii.Number(float64(want)))
		})
		var actions interface{} = assertions.Match_Absent()
		if s.Config.AlarmTopicArn != "" {
			actions = []string{s.Config.AlarmTopicArn}
		}
		check(t, f.name+": alarm actions", func() {
			f.tpl.AllResourcesProperties(typ("AWS::CloudWatch::Alarm"), obj{"AlarmActions": actions})
		})
		if !s.Config.Dashboard {
			check(t, f.name+": no dashboard unless asked for (a fixed $3/month)", func() {
				f.tpl.ResourceCountIs(typ("AWS::CloudWatch::Dashboard"), jsii.Number(0))
				if _, ok := f.json["Outputs"].(obj)["DashboardName"]; ok {
					t.Errorf("%s: DashboardName output without a dashboard", f.name)
				}
			})
			continue
		}
		check(t, f.name+": dashboard", func() {
			f.tpl.HasResourceProperties(typ("AWS::CloudWatch::Dashboard"), obj{"DashboardName": "cdp-" + s.Config.Stage})
			f.tpl.HasOutput(typ("DashboardName"), obj{})
		})
	}
}

func arnOrAtt(id, attr string) obj { return obj{"Fn::GetAtt": []interface{}{id, attr}} }
