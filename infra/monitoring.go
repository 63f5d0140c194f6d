package infra

import (
	"fmt"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssns"
	"github.com/aws/aws-cdk-go/awscdk/v2/interfaces/interfacesawscloudwatch"
	"github.com/aws/jsii-runtime-go"
)

// IteratorAgeAlarmMillis is how far behind a Kinesis consumer may fall before someone is told:
// five minutes of lag means audiences and webhooks are visibly late.
const IteratorAgeAlarmMillis = 5 * 60 * 1000

func minutes(n float64) awscdk.Duration { return awscdk.Duration_Minutes(jsii.Number(n)) }

// alarm creates one alarm that fires on threshold or more, with missing data as OK (a
// function that is not invoked has no errors).
func (s *Stack) alarm(id, name, what string, m awscloudwatch.IMetric, threshold float64, periods float64) {
	a := awscloudwatch.NewAlarm(s.Stack, jsii.String(id), &awscloudwatch.AlarmProps{
		AlarmName:          jsii.String(fmt.Sprintf("cdp-%s-%s", s.Config.Stage, name)),
		AlarmDescription:   jsii.String(what),
		Metric:             m,
		Threshold:          jsii.Number(threshold),
		EvaluationPeriods:  jsii.Number(periods),
		DatapointsToAlarm:  jsii.Number(periods),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	if s.Config.AlarmTopicArn != "" {
		if s.alarmTopic == nil {
			s.alarmTopic = awssns.Topic_FromTopicArn(s.Stack, jsii.String("AlarmTopic"), jsii.String(s.Config.AlarmTopicArn))
		}
		a.AddAlarmAction(awscloudwatchactions.NewSnsAction(s.alarmTopic))
		a.AddOkAction(awscloudwatchactions.NewSnsAction(s.alarmTopic))
	}
	s.Alarms = append(s.Alarms, a)
}

// newMonitoring adds the alarms for everything the stack created, and the dashboard when the
// configuration asks for one (it is the one fixed cost of monitoring that is optional).
func (s *Stack) newMonitoring(specs []FunctionSpec) {
	sum5 := &awscloudwatch.MetricOptions{Statistic: jsii.String("Sum"), Period: minutes(5)}
	max1 := &awscloudwatch.MetricOptions{Statistic: jsii.String("Maximum"), Period: minutes(1)}

	var rows [][]awscloudwatch.IWidget
	for _, spec := range specs {
		rows = append(rows, s.functionMonitoring(spec, sum5, max1))
	}
	widgets := [][]awscloudwatch.IWidget{s.apiMonitoring(sum5), s.dataWidgets(sum5), s.archiveMonitoring()}
	widgets = append(widgets, rows...)
	if s.Config.Dashboard {
		s.newDashboard(widgets)
	}
}

// functionMonitoring adds one function's alarms (errors, throttles; for a stream trigger also
// iterator age and parked batches) and returns its dashboard row.
func (s *Stack) functionMonitoring(spec FunctionSpec, sum5, max1 *awscloudwatch.MetricOptions) []awscloudwatch.IWidget {
	fn := s.Functions[spec.Name]
	id := exportName(spec.Name)
	s.alarm(id+"ErrorsAlarm", spec.Name+"-errors",
		"The "+spec.Name+" function returned errors (for a trigger: batches being retried).",
		fn.MetricErrors(sum5), 1, 1)
	s.alarm(id+"ThrottlesAlarm", spec.Name+"-throttles",
		"The "+spec.Name+" function was throttled (account concurrency exhausted?).",
		fn.MetricThrottles(sum5), 1, 1)
	widgets := []awscloudwatch.IWidget{
		graph(spec.Name+" invocations / errors / throttles",
			fn.MetricInvocations(sum5), fn.MetricErrors(sum5), fn.MetricThrottles(sum5)),
		graph(spec.Name+" duration p99 (ms)",
			fn.MetricDuration(&awscloudwatch.MetricOptions{Statistic: jsii.String("p99"), Period: minutes(5)})),
	}
	if spec.Trigger == "" {
		return widgets
	}
	age := fn.Metric(jsii.String("IteratorAge"), max1)
	s.alarm(id+"IteratorAgeAlarm", spec.Name+"-iterator-age",
		"The "+spec.Name+" function is more than 5 minutes behind the "+spec.Trigger+" stream.",
		age, IteratorAgeAlarmMillis, 5)
	q := s.FailureQueues[spec.Name]
	depth := q.MetricApproximateNumberOfMessagesVisible(max1)
	s.alarm(id+"DeadLettersAlarm", spec.Name+"-dead-letters",
		"Batches of the "+spec.Trigger+" stream were parked in the "+spec.Name+
			" failure queue; replay them before the stream retention runs out.",
		depth, 1, 1)
	return append(widgets,
		graph(spec.Name+" iterator age max (ms)", age),
		graph(spec.Name+" parked batches", depth))
}

// apiMonitoring adds the HTTP API's 5xx alarm and returns its dashboard row.
func (s *Stack) apiMonitoring(sum5 *awscloudwatch.MetricOptions) []awscloudwatch.IWidget {
	api5xx := s.API.MetricServerError(sum5)
	s.alarm("HttpApi5xxAlarm", "api-5xx",
		"The HTTP API answered 5xx: for tracking calls this means events were not stored and clients are retrying.",
		api5xx, 1, 1)
	return []awscloudwatch.IWidget{
		graph("HTTP API requests / 4xx / 5xx", s.API.MetricCount(sum5), s.API.MetricClientError(sum5), api5xx),
		graph("HTTP API latency p99 (ms)", s.API.MetricLatency(&awscloudwatch.MetricOptions{Statistic: jsii.String("p99"), Period: minutes(5)})),
	}
}

// archiveMonitoring adds the archive's delivery alarm and returns its dashboard row. Data
// freshness (the age of the oldest record not yet in S3) catches every way delivery can fail:
// S3 refusing writes, a permission lost, the stream not read; a healthy stream stays below
// the buffer interval.
func (s *Stack) archiveMonitoring() []awscloudwatch.IWidget {
	metric := func(name, stat string) awscloudwatch.Metric {
		return awscloudwatch.NewMetric(&awscloudwatch.MetricProps{
			Namespace:     jsii.String("AWS/Firehose"),
			MetricName:    jsii.String(name),
			DimensionsMap: &map[string]*string{"DeliveryStreamName": s.Archive.Delivery.Ref()},
			Statistic:     jsii.String(stat),
			Period:        minutes(5),
		})
	}
	freshness := metric("DeliveryToS3.DataFreshness", "Maximum")
	s.alarm("ArchiveFreshnessAlarm", "archive-freshness",
		fmt.Sprintf("Events older than %d s are not yet in the archive bucket: Firehose cannot "+
			"deliver (see its log group); after 24 h of retries records go to the errors/ prefix.", ArchiveFreshnessAlarmSeconds),
		freshness, ArchiveFreshnessAlarmSeconds, 3)
	return []awscloudwatch.IWidget{
		graph("archive data freshness max (s)", freshness),
		graph("archive records delivered / bytes", metric("DeliveryToS3.Records", "Sum"), metric("DeliveryToS3.Bytes", "Sum")),
		graph("archive delivery success (avg)", metric("DeliveryToS3.Success", "Average")),
	}
}

// dataWidgets is the dashboard row of the streams and the table.
func (s *Stack) dataWidgets(sum5 *awscloudwatch.MetricOptions) []awscloudwatch.IWidget {
	var streamMetrics []awscloudwatch.IMetric
	var throttled []awscloudwatch.IMetric
	for _, name := range StreamNames {
		st := s.Streams[name]
		streamMetrics = append(streamMetrics, st.MetricIncomingRecords(&awscloudwatch.MetricOptions{
			Statistic: jsii.String("Sum"), Period: minutes(5), Label: jsii.String(name),
		}))
		throttled = append(throttled, st.MetricWriteProvisionedThroughputExceeded(&awscloudwatch.MetricOptions{
			Statistic: jsii.String("Sum"), Period: minutes(5), Label: jsii.String(name),
		}))
	}
	return []awscloudwatch.IWidget{
		graph("stream incoming records", streamMetrics...),
		graph("stream write throttles", throttled...),
		graph("table consumed capacity",
			s.Table.MetricConsumedReadCapacityUnits(sum5), s.Table.MetricConsumedWriteCapacityUnits(sum5)),
	}
}

// newDashboard makes the dashboard of these rows plus a last row with every alarm's status.
func (s *Stack) newDashboard(widgets [][]awscloudwatch.IWidget) {
	refs := make([]interfacesawscloudwatch.IAlarmRef, len(s.Alarms))
	for i, a := range s.Alarms {
		refs[i] = a
	}
	widgets = append(widgets, []awscloudwatch.IWidget{
		awscloudwatch.NewAlarmStatusWidget(&awscloudwatch.AlarmStatusWidgetProps{
			Title: jsii.String("alarms"), Alarms: &refs, Width: jsii.Number(24),
		}),
	})
	var ws []*[]awscloudwatch.IWidget
	for i := range widgets {
		ws = append(ws, &widgets[i])
	}
	s.Dashboard = awscloudwatch.NewDashboard(s.Stack, jsii.String("Dashboard"), &awscloudwatch.DashboardProps{
		DashboardName: jsii.String("cdp-" + s.Config.Stage),
		Widgets:       &ws,
	})
}

func graph(title string, metrics ...awscloudwatch.IMetric) awscloudwatch.IWidget {
	return awscloudwatch.NewGraphWidget(&awscloudwatch.GraphWidgetProps{
		Title: jsii.String(title),
		Left:  &metrics,
		Width: jsii.Number(8),
	})
}
