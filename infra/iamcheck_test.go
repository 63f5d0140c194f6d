package infra

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// This file is a small, pure-Go IAM reviewer for synthesized templates. It knows nothing of
// the CDK, so TestIAMCheckerCatchesViolations can feed it hand-made bad templates and prove
// that it fails when it should.

// wildcardActions are the only actions allowed on Resource "*", because AWS offers no
// resource-level permission for them. None is used today; X-Ray tracing would add these.
var wildcardActions = map[string]bool{
	"xray:PutTraceSegments":    true,
	"xray:PutTelemetryRecords": true,
}

// grantee is what one function role may do: canonical resource -> allowed actions.
type grantee map[string]map[string]bool

func (g grantee) allow(resource string, actions ...string) {
	if g[resource] == nil {
		g[resource] = map[string]bool{}
	}
	for _, a := range actions {
		g[resource][a] = true
	}
}

var kinesisConsumerActions = []string{
	"kinesis:DescribeStream", "kinesis:DescribeStreamConsumer", "kinesis:DescribeStreamSummary",
	"kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards", "kinesis:ListStreams",
	"kinesis:SubscribeToShard",
}

// reviewedRole is one role the stack may create and what it may (Expected) and must
// (Required) be granted: a function's role, derived from its spec, or the archive's
// delivery role.
type reviewedRole struct {
	Name               string
	Expected, Required grantee
}

func functionRole(spec FunctionSpec) reviewedRole {
	return reviewedRole{Name: "function " + spec.Name, Expected: expectedGrants(spec), Required: requiredGrants(spec)}
}

// archiveDeliveryRole is Firehose's role: read the events stream, write the archive bucket
// and its delivery-error log, nothing else.
func archiveDeliveryRole() reviewedRole {
	g := grantee{}
	g.allow("<stream:"+StreamEvents+">", firehoseStreamActions...)
	g.allow("<bucket:archive>", firehoseBucketActions...)
	g.allow("<bucket:archive>/*", firehoseObjectActions...)
	g.allow("<logs:archive>", "logs:PutLogEvents")
	return reviewedRole{Name: "archive delivery", Expected: g, Required: g}
}

// objectsOfOneBucket is the only wildcard resource allowed: every object of one bucket of
// the stack (archive keys are only known at run time).
var objectsOfOneBucket = regexp.MustCompile(`^<bucket:[a-z-]+>/\*$`)

// expectedGrants derives, from a spec alone, everything its role may do. Resources are
// canonical names: <table>, <table>/index/gsi1, <stream:events>, <queue:identity>, <logs:api>.
func expectedGrants(spec FunctionSpec) grantee {
	g := grantee{}
	g.allow("<logs:"+spec.Name+">", "logs:CreateLogStream", "logs:PutLogEvents")
	if spec.Table >= TableRead {
		for _, r := range []string{"<table>", "<table>/index/" + GSI1} {
			g.allow(r, tableReadActions...)
			if spec.Table == TableReadWrite {
				g.allow(r, tableWriteActions...)
			}
		}
	}
	for _, s := range spec.Puts {
		g.allow("<stream:"+s+">", "kinesis:ListShards", "kinesis:PutRecord", "kinesis:PutRecords")
	}
	for _, s := range spec.Reads {
		g.allow("<stream:"+s+">", kinesisConsumerActions...)
	}
	if spec.Counts && spec.Table == TableRead {
		g.allow("<table>", countsActions...)
	}
	if spec.PrivacyKey {
		g.allow("<secret:privacy-key>", "secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret")
	}
	if spec.Archive {
		g.allow("<bucket:archive>", "s3:ListBucket")
		g.allow("<bucket:archive>/*", "s3:GetObject", "s3:PutObject", "s3:DeleteObject")
	}
	if spec.Trigger != "" {
		g.allow("<stream:"+spec.Trigger+">", kinesisConsumerActions...)
		g.allow("<queue:"+spec.Name+">", "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:SendMessage")
	}
	return g
}

// requiredGrants is the part of expectedGrants without which the function cannot work. The
// CDK's own grants add a few harmless describe/list actions on the same resources; those are
// allowed but not required, so a CDK upgrade that drops one does not fail the test.
func requiredGrants(spec FunctionSpec) grantee {
	g := grantee{}
	g.allow("<logs:"+spec.Name+">", "logs:CreateLogStream", "logs:PutLogEvents")
	if spec.Table >= TableRead {
		g.allow("<table>", "dynamodb:GetItem", "dynamodb:BatchGetItem", "dynamodb:Query")
		g.allow("<table>/index/"+GSI1, "dynamodb:Query")
		if spec.Table == TableReadWrite {
			g.allow("<table>", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem")
		}
	}
	for _, s := range spec.Puts {
		g.allow("<stream:"+s+">", "kinesis:PutRecord", "kinesis:PutRecords")
	}
	for _, s := range spec.Reads {
		g.allow("<stream:"+s+">", "kinesis:GetRecords", "kinesis:GetShardIterator", "kinesis:ListShards")
	}
	if spec.Counts && spec.Table == TableRead {
		g.allow("<table>", countsActions...)
	}
	if spec.PrivacyKey {
		g.allow("<secret:privacy-key>", "secretsmanager:GetSecretValue")
	}
	if spec.Archive {
		g.allow("<bucket:archive>", "s3:ListBucket")
		g.allow("<bucket:archive>/*", "s3:GetObject", "s3:PutObject", "s3:DeleteObject")
	}
	if spec.Trigger != "" {
		g.allow("<stream:"+spec.Trigger+">", "kinesis:GetRecords", "kinesis:GetShardIterator",
			"kinesis:DescribeStream", "kinesis:ListShards")
		g.allow("<queue:"+spec.Name+">", "sqs:SendMessage")
	}
	return g
}

// canonical renders a policy Resource value with logical ids replaced by names.
func canonical(v interface{}, names map[string]string) string {
	switch t := v.(type) {
	case string:
		return t
	case map[string]interface{}:
		if ref, ok := t["Ref"].(string); ok {
			return nameOf(ref, names)
		}
		if ga, ok := t["Fn::GetAtt"].([]interface{}); ok && len(ga) == 2 && ga[1] == "Arn" {
			return nameOf(fmt.Sprint(ga[0]), names)
		}
		if j, ok := t["Fn::Join"].([]interface{}); ok && len(j) == 2 && j[0] == "" {
			var sb strings.Builder
			parts, _ := j[1].([]interface{})
			for _, p := range parts {
				sb.WriteString(canonical(p, names))
			}
			return sb.String()
		}
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func nameOf(id string, names map[string]string) string {
	if n, ok := names[id]; ok {
		return "<" + n + ">"
	}
	return "<unknown:" + id + ">"
}

func asList(v interface{}) []interface{} {
	if l, ok := v.([]interface{}); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []interface{}{v}
}

// reviewIAM checks every IAM statement in the template. names maps logical ids to canonical
// names; roles maps each function role's logical id to its spec. It returns one line per
// violation (a wildcard resource, an action or resource the spec does not call for, a
// managed policy, a role that belongs to no function) and, per role, what it was granted.
func reviewIAM(tpl map[string]interface{}, names map[string]string, roles map[string]reviewedRole) (problems []string, granted map[string]grantee) {
	granted = map[string]grantee{}
	res, _ := tpl["Resources"].(map[string]interface{})
	ids := make([]string, 0, len(res))
	for id := range res {
		ids = append(ids, id)
	}
	sort.Strings(ids)

	reviewDoc := func(where string, doc interface{}, attached []string) {
		d, _ := doc.(map[string]interface{})
		for i, st := range asList(d["Statement"]) {
			s, _ := st.(map[string]interface{})
			if s["Effect"] != "Allow" {
				continue
			}
			if s["NotAction"] != nil || s["NotResource"] != nil {
				problems = append(problems, fmt.Sprintf("%s statement %d: NotAction/NotResource grant more than they name", where, i))
			}
			actions := asList(s["Action"])
			for _, rv := range asList(s["Resource"]) {
				r := canonical(rv, names)
				for _, av := range actions {
					a := fmt.Sprint(av)
					if strings.Contains(r, "*") && !wildcardActions[a] && !objectsOfOneBucket.MatchString(r) {
						problems = append(problems, fmt.Sprintf("%s: %s on wildcard resource %s", where, a, r))
						continue
					}
					if strings.Contains(a, "*") {
						problems = append(problems, fmt.Sprintf("%s: wildcard action %s on %s", where, a, r))
						continue
					}
					for _, role := range attached {
						if granted[role] == nil {
							granted[role] = grantee{}
						}
						granted[role].allow(r, a)
						rr, ok := roles[role]
						if !ok {
							problems = append(problems, fmt.Sprintf("%s: role %s belongs to no function", where, role))
							continue
						}
						if !rr.Expected[r][a] && !(r == "*" && wildcardActions[a]) {
							problems = append(problems, fmt.Sprintf("%s: %s is granted %s on %s, which it does not need", where, rr.Name, a, r))
						}
					}
				}
			}
		}
	}

	for _, id := range ids {
		r, _ := res[id].(map[string]interface{})
		props, _ := r["Properties"].(map[string]interface{})
		switch r["Type"] {
		case "AWS::IAM::Policy":
			var attached []string
			for _, rr := range asList(props["Roles"]) {
				m, _ := rr.(map[string]interface{})
				ref, _ := m["Ref"].(string)
				attached = append(attached, ref)
			}
			reviewDoc("policy "+id, props["PolicyDocument"], attached)
		case "AWS::IAM::Role":
			if _, ok := roles[id]; !ok {
				problems = append(problems, fmt.Sprintf("role %s belongs to no function", id))
			}
			if len(asList(props["ManagedPolicyArns"])) > 0 {
				problems = append(problems, fmt.Sprintf("role %s has managed policies (their resources are not ours to scope)", id))
			}
			for _, p := range asList(props["Policies"]) {
				pm, _ := p.(map[string]interface{})
				reviewDoc("inline policy of "+id, pm["PolicyDocument"], []string{id})
			}
		case "AWS::IAM::ManagedPolicy", "AWS::IAM::User", "AWS::IAM::Group":
			problems = append(problems, fmt.Sprintf("%s %s: the stack should create function roles only", r["Type"], id))
		}
	}
	return problems, granted
}

// missingGrants lists what a role needs but was not granted: a function that cannot do its
// job is as wrong as one that can do too much.
func missingGrants(role reviewedRole, got grantee) []string {
	var missing []string
	for r, actions := range role.Required {
		for a := range actions {
			if !got[r][a] {
				missing = append(missing, fmt.Sprintf("%s lacks %s on %s", role.Name, a, r))
			}
		}
	}
	sort.Strings(missing)
	return missing
}
