// Command livediff asks KEDA v2.21.0's built-in scaler and KEDA's external scaler
// (pointed at keda-queue-scaler) the same question, on the same real broker.
//
// It reads one JSON case per line on stdin: a trigger type (redis, redis-streams,
// aws-sqs-queue, rabbitmq, ...), its metadata, resolved environment and auth
// parameters, and the scaler's address. For each case it builds both scalers from a
// scalersconfig.ScalerConfig as KEDA's operator does for a ScaledJob trigger, calls
// GetMetricSpecForScaling and then GetMetricsAndActivity for the first spec, and
// writes one JSON line with both answers: metric name, target, value, activity, or
// the error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scalers/scalersconfig"
	v2 "k8s.io/api/autoscaling/v2"
	"k8s.io/client-go/tools/events"
)

// Case is one trigger to evaluate both ways.
type Case struct {
	ID            string            `json:"id"`
	Type          string            `json:"type"`
	Metadata      map[string]string `json:"metadata"`
	ResolvedEnv   map[string]string `json:"resolvedEnv"`
	AuthParams    map[string]string `json:"authParams"`
	ScalerAddress string            `json:"scalerAddress"`
	TriggerIndex  int               `json:"triggerIndex"`
	// Name is the ScaledJob's name in KEDA's request (default "livediff").
	Name string `json:"name"`
}

// Result is one scaler's answer.
type Result struct {
	Stage      string    `json:"stage,omitempty"` // where it failed: build, spec, metrics
	Error      string    `json:"error,omitempty"`
	MetricName string    `json:"metricName,omitempty"`
	Target     float64   `json:"target"`
	Values     []float64 `json:"values"`
	Value      float64   `json:"value"`
	Active     bool      `json:"active"`
}

// Answer pairs the two.
type Answer struct {
	ID       string `json:"id"`
	BuiltIn  Result `json:"builtin"`
	External Result `json:"external"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c Case
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "livediff:", err)
			os.Exit(2)
		}
		answer := Answer{ID: c.ID, BuiltIn: builtIn(c), External: external(c)}
		if err := out.Encode(answer); err != nil {
			fmt.Fprintln(os.Stderr, "livediff:", err)
			os.Exit(2)
		}
	}
}

func config(c Case, triggerType string, metadata map[string]string) *scalersconfig.ScalerConfig {
	return &scalersconfig.ScalerConfig{
		ScalableObjectName:      nameOf(c),
		ScalableObjectNamespace: "default",
		ScalableObjectType:      "ScaledJob",
		GlobalHTTPTimeout:       5 * time.Second,
		TriggerType:             triggerType,
		TriggerMetadata:         metadata,
		ResolvedEnv:             orEmpty(c.ResolvedEnv),
		AuthParams:              orEmpty(c.AuthParams),
		TriggerIndex:            c.TriggerIndex,
		MetricType:              v2.AverageValueMetricType,
		Recorder:                &events.FakeRecorder{},
	}
}

func nameOf(c Case) string {
	if c.Name != "" {
		return c.Name
	}
	return "livediff"
}

func orEmpty(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// builtIn builds the scaler KEDA's scalers_builder picks for the trigger type.
func builtIn(c Case) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := config(c, c.Type, maps.Clone(c.Metadata))
	var s scalers.Scaler
	var err error
	switch c.Type {
	case "redis":
		s, err = scalers.NewRedisScaler(ctx, false, false, cfg)
	case "redis-cluster":
		s, err = scalers.NewRedisScaler(ctx, true, false, cfg)
	case "redis-sentinel":
		s, err = scalers.NewRedisScaler(ctx, false, true, cfg)
	case "redis-streams":
		s, err = scalers.NewRedisStreamsScaler(ctx, false, false, cfg)
	case "redis-cluster-streams":
		s, err = scalers.NewRedisStreamsScaler(ctx, true, false, cfg)
	case "redis-sentinel-streams":
		s, err = scalers.NewRedisStreamsScaler(ctx, false, true, cfg)
	case "aws-sqs-queue":
		s, err = scalers.NewAwsSqsQueueScaler(ctx, cfg)
	case "rabbitmq":
		s, err = scalers.NewRabbitMQScaler(cfg)
	default:
		return Result{Stage: "build", Error: "livediff: unknown type " + c.Type}
	}
	if err != nil {
		return Result{Stage: "build", Error: err.Error()}
	}
	defer s.Close(ctx)
	return evaluate(ctx, s)
}

// external builds KEDA's external scaler for the same trigger, aimed at us.
func external(c Case) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	metadata := maps.Clone(c.Metadata)
	if metadata == nil {
		metadata = map[string]string{}
	}
	metadata["scalerAddress"] = c.ScalerAddress
	metadata["scalerType"] = c.Type
	s, err := scalers.NewExternalScaler(config(c, "external", metadata))
	if err != nil {
		return Result{Stage: "build", Error: err.Error()}
	}
	defer s.Close(ctx)
	return evaluate(ctx, s)
}

func evaluate(ctx context.Context, s scalers.Scaler) Result {
	specs := s.GetMetricSpecForScaling(ctx)
	if len(specs) == 0 || specs[0].External == nil {
		return Result{Stage: "spec", Error: "no metric spec (the error is in the operator log)"}
	}
	spec := specs[0].External
	r := Result{MetricName: spec.Metric.Name, Values: []float64{}}
	if spec.Target.AverageValue != nil {
		r.Target = spec.Target.AverageValue.AsApproximateFloat64()
	}
	metrics, active, err := s.GetMetricsAndActivity(ctx, spec.Metric.Name)
	if err != nil {
		r.Stage, r.Error = "metrics", err.Error()
		return r
	}
	for _, m := range metrics {
		v := m.Value.AsApproximateFloat64()
		r.Values = append(r.Values, v)
		r.Value += v
	}
	r.Active = active
	return r
}
