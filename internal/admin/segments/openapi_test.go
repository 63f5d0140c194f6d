package segments_test

import (
	"os"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/serverless-cdp/cdp/internal/predict"
	"github.com/serverless-cdp/cdp/internal/segment"
	"github.com/serverless-cdp/cdp/internal/segmentdef"
)

// jsonTags are a struct's fields by JSON name, each with whether it may be omitted (embedded
// structs flattened).
func jsonTags(t reflect.Type) map[string]bool {
	out := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("json"), ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			for k, v := range jsonTags(ft) {
				out[k] = v
			}
			continue
		}
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[name] = strings.Contains(opts, "omit")
	}
	return out
}

// jsonFields are the JSON names of a struct's fields, sorted.
func jsonFields(t reflect.Type) []string {
	var out []string
	for k := range jsonTags(t) {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

type schema struct {
	Properties map[string]yaml.Node `yaml:"properties"`
	Required   []string             `yaml:"required"`
	Enum       []string             `yaml:"enum"`
}

func openAPISchemas(t *testing.T) map[string]schema {
	t.Helper()
	raw, err := os.ReadFile("../../../api/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Components struct {
			Schemas map[string]schema `yaml:"schemas"`
		} `yaml:"components"`
	}
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	return doc.Components.Schemas
}

func keys(m map[string]yaml.Node) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestPredictionSchemasMatchTypes: the OpenAPI schemas of the prediction answers name exactly
// the JSON fields of the Go types the routes encode, and require only fields that are always
// sent; the two value shapes together are predict.Score.
func TestPredictionSchemasMatchTypes(t *testing.T) {
	schemas := openAPISchemas(t)
	for name, typ := range map[string]reflect.Type{
		"Training":    reflect.TypeFor[segment.Training](),
		"QualityView": reflect.TypeFor[segment.QualityView](),
		"Quality":     reflect.TypeFor[predict.Quality](),
		"ModelParams": reflect.TypeFor[predict.Params](),
		"Prediction":  reflect.TypeFor[segmentdef.Prediction](),
	} {
		s, ok := schemas[name]
		if !ok {
			t.Errorf("no schema %s", name)
			continue
		}
		want := jsonFields(typ)
		if got := keys(s.Properties); !slices.Equal(got, want) {
			t.Errorf("schema %s has %v, %s encodes %v", name, got, typ, want)
		}
		tags := jsonTags(typ)
		for _, r := range s.Required {
			if omit, ok := tags[r]; !ok || omit {
				t.Errorf("schema %s requires %s, which %s may omit", name, r, typ)
			}
		}
	}
	values := append(keys(schemas["PredictionValue"].Properties), keys(schemas["ProductsValue"].Properties)...)
	sort.Strings(values)
	if want := jsonFields(reflect.TypeFor[predict.Score]()); !slices.Equal(values, want) {
		t.Errorf("PredictionValue and ProductsValue have %v, predict.Score encodes %v", values, want)
	}
	if !slices.Contains(jsonFields(reflect.TypeFor[segmentdef.ComputedTrait]()), "prediction") || schemas["ComputedTrait"].Properties["prediction"].Kind == 0 {
		t.Error("ComputedTrait.prediction is not documented")
	}
}

// TestPredictiveKindsDocumented: the computed-trait kind enum and QualityView's kinds list the
// predictive kinds, and the training statuses are the segment package's.
func TestPredictiveKindsDocumented(t *testing.T) {
	schemas := openAPISchemas(t)
	predictive := []string{segmentdef.KindPurchaseLikelihood, segmentdef.KindChurnLikelihood, segmentdef.KindPredictedLTV,
		segmentdef.KindReturnLikelihood, segmentdef.KindNextBestProduct}
	prop := func(s, p string) schema {
		t.Helper()
		n := schemas[s].Properties[p]
		var out schema
		if err := n.Decode(&out); err != nil {
			t.Fatalf("%s.%s: %v", s, p, err)
		}
		return out
	}
	kind, qkind, status := prop("ComputedTrait", "kind"), prop("QualityView", "kind"), prop("Training", "status")
	for _, k := range predictive {
		if !slices.Contains(kind.Enum, k) {
			t.Errorf("ComputedTrait.kind lacks %s", k)
		}
	}
	if !slices.Equal(qkind.Enum, predictive) {
		t.Errorf("QualityView.kind is %v, want %v", qkind.Enum, predictive)
	}
	wantStatus := []string{segment.TrainQueued, segment.TrainCollecting, segment.TrainFitting, segment.TrainPublished,
		segment.TrainRefused, segment.TrainFailed}
	if !slices.Equal(status.Enum, wantStatus) {
		t.Errorf("Training.status is %v, want %v", status.Enum, wantStatus)
	}
}
