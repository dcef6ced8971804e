// Command jobmodel answers ScaledJob scenarios with KEDA v2.21.0's own code.
//
// It reads one JSON scenario per line on stdin and writes one JSON answer per line
// on stdout: whether the ScaledJob is active and how many Jobs KEDA creates in that
// poll. The arithmetic is KEDA's exported functions (scaledjob.CalculateQueueLengthAndMaxValue,
// scaledjob.IsScaledJobActive, ScaledJob.MinReplicaCount/MaxReplicaCount) and KEDA's
// real scale executor (executor.NewScaleExecutor(...).RequestJobScale) running against
// controller-runtime's fake client, which holds the scenario's Jobs and Pods and
// records the Jobs KEDA creates. Metric specs and values are built with KEDA's own
// external-scaler helpers (scalers.GetMetricTargetMili, scalers.GenerateMetricInMili).
// Only the loop of scale_handler.getScaledJobMetrics, which needs a live scalers
// cache, is restated below, line for line.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/go-logr/logr"
	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
	"github.com/kedacore/keda/v2/pkg/scalers"
	"github.com/kedacore/keda/v2/pkg/scaling/executor"
	"github.com/kedacore/keda/v2/pkg/scaling/scaledjob"
	v2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/meta/testrestmapper"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8sruntime "k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/client-go/tools/events"
	"k8s.io/metrics/pkg/apis/external_metrics"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// Value is one MetricValue as the external scaler returns it.
type Value struct {
	Int   int64   `json:"int"`
	Float float64 `json:"float"`
}

// Spec is one MetricSpec of a trigger and KEDA's GetMetrics/IsActive answer for it.
type Spec struct {
	Name       string  `json:"name"`
	TargetSize int64   `json:"targetSize"`
	TargetF    float64 `json:"targetSizeFloat"`
	Values     []Value `json:"values"`
	Active     bool    `json:"active"`
	Error      bool    `json:"error"` // GetMetrics or IsActive failed (after KEDA's retry)
}

// Trigger is one external trigger; SpecError means GetMetricSpec failed.
type Trigger struct {
	SpecError bool   `json:"specError"`
	Specs     []Spec `json:"specs"`
}

// Pod is one Pod of a Job.
type Pod struct {
	Phase      string            `json:"phase"`
	Conditions map[string]string `json:"conditions"`
}

// Job is one Job of the ScaledJob, with its conditions (type -> status) and Pods.
type Job struct {
	Conditions map[string]string `json:"conditions"`
	Pods       []Pod             `json:"pods"`
}

// Scenario is one poll of one ScaledJob.
type Scenario struct {
	ID                   int       `json:"id"`
	MinReplicaCount      *int32    `json:"minReplicaCount"`
	MaxReplicaCount      *int32    `json:"maxReplicaCount"`
	Strategy             string    `json:"strategy"`
	Deduction            *int32    `json:"customScalingQueueLengthDeduction"`
	Percentage           string    `json:"customScalingRunningJobPercentage"`
	Calculation          string    `json:"multipleScalersCalculation"`
	PendingPodConditions []string  `json:"pendingPodConditions"`
	Triggers             []Trigger `json:"triggers"`
	Jobs                 []Job     `json:"jobs"`
	// Arriving Jobs are created by someone else (another scale loop of the same
	// ScaledJob) between KEDA's two Job listings, the running count's and the
	// pending count's: that poll can count more pending Jobs than running ones.
	Arriving []Job `json:"arriving"`
}

// Answer is what KEDA did in that poll.
type Answer struct {
	ID       int    `json:"id"`
	Active   bool   `json:"active"`
	IsError  bool   `json:"isError"`
	ScaleTo  int64  `json:"scaleTo"`
	MaxScale int64  `json:"maxScale"`
	Min      int64  `json:"minReplicaCount"`
	Max      int64  `json:"maxReplicaCount"`
	Created  int64  `json:"created"`
	Ready    string `json:"ready"`
}

const (
	namespace = "ns"
	name      = "sj"
)

func main() {
	scheme := k8sruntime.NewScheme()
	must(clientgoscheme.AddToScheme(scheme))
	must(kedav1alpha1.AddToScheme(scheme))

	if path := os.Getenv("JOBMODEL_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer pprof.StopCPUProfile()
	}
	logf.SetLogger(logr.Discard())
	// A REST mapper for the whole scheme is costly to build: build it once and
	// share it (it is read-only).
	mapper := testrestmapper.TestOnlyStaticRESTMapper(scheme)

	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	var scenarios []Scenario
	for in.Scan() {
		var s Scenario
		must(json.Unmarshal(in.Bytes(), &s))
		scenarios = append(scenarios, s)
	}
	must(in.Err())

	// Scenarios are independent: answer them on every core, print them in order.
	answers := make([]Answer, len(scenarios))
	var wg sync.WaitGroup
	next := make(chan int)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := range next {
				answers[i] = answer(scheme, mapper, &scenarios[i])
			}
		})
	}
	for i := range scenarios {
		next <- i
	}
	close(next)
	wg.Wait()

	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for _, a := range answers {
		must(enc.Encode(a))
	}
}

func answer(scheme *k8sruntime.Scheme, mapper meta.RESTMapper, s *Scenario) Answer {
	sj := &kedav1alpha1.ScaledJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "keda.sh/v1alpha1", Kind: "ScaledJob"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace, UID: "uid-sj"},
		Spec: kedav1alpha1.ScaledJobSpec{
			JobTargetRef: &batchv1.JobSpec{
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "worker", Image: "worker"}},
				}},
			},
			MinReplicaCount: s.MinReplicaCount,
			MaxReplicaCount: s.MaxReplicaCount,
			ScalingStrategy: kedav1alpha1.ScalingStrategy{
				Strategy:                          s.Strategy,
				CustomScalingQueueLengthDeduction: s.Deduction,
				CustomScalingRunningJobPercentage: s.Percentage,
				PendingPodConditions:              s.PendingPodConditions,
				MultipleScalersCalculation:        s.Calculation,
			},
		},
	}

	metrics, isError := scaledJobMetrics(sj, s.Triggers)
	isActive, scaleTo, maxScale, _ := scaledjob.IsScaledJobActive(
		metrics, sj.Spec.ScalingStrategy.MultipleScalersCalculation, sj.MinReplicaCount(), sj.MaxReplicaCount())

	// A plain object tracker: the default field-managed one rebuilds a REST mapper
	// for the whole scheme on every Create, which is all of the run time here.
	tracker := clienttesting.NewObjectTracker(scheme, serializer.NewCodecFactory(scheme).UniversalDecoder())
	armed, listings := false, 0
	arrive := interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, list client.ObjectList, opts ...client.ListOption) error {
		if _, ok := list.(*batchv1.JobList); ok && armed {
			listings++
			if listings == 2 { // getPendingJobCount's, after getRunningJobCount's
				for _, obj := range objects(s.Arriving, "arriving") {
					must(c.Create(ctx, obj))
				}
			}
		}
		return c.List(ctx, list, opts...)
	}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithRESTMapper(mapper).
		WithObjectTracker(tracker).WithObjects(objects(s.Jobs, "existing")...).
		WithInterceptorFuncs(arrive).Build()
	before := countJobs(c) + int64(len(s.Arriving))
	armed = true
	exec := executor.NewScaleExecutor(c, nil, scheme, 5*time.Second, &events.FakeRecorder{})
	result := exec.RequestJobScale(context.Background(), sj, isActive, isError, scaleTo, maxScale, executor.ScaleExecutorOptions{})
	ready := ""
	if cond := result.Conditions.GetReadyCondition(); cond.Type != "" {
		ready = string(cond.Status) + "/" + cond.Reason
	}
	return Answer{
		ID: s.ID, Active: isActive, IsError: isError, ScaleTo: scaleTo, MaxScale: maxScale,
		Min: sj.MinReplicaCount(), Max: sj.MaxReplicaCount(),
		Created: countJobs(c) - before, Ready: ready,
	}
}

// scaledJobMetrics restates the loop of KEDA's scale_handler.getScaledJobMetrics
// (v2.21.0): one ScalerMetrics per metric spec, the scaler's activity sticky across
// its specs, a failed spec skipped and flagged as an error.
func scaledJobMetrics(sj *kedav1alpha1.ScaledJob, triggers []Trigger) ([]scaledjob.ScalerMetrics, bool) {
	var isError bool
	var scalersMetrics []scaledjob.ScalerMetrics
	for index, trigger := range triggers {
		if trigger.SpecError {
			continue // GetMetricSpecForScaling logged the error and returned no spec
		}
		metricSpecs := buildMetricSpecs(index, trigger.Specs)
		isActive := false
		for i, spec := range metricSpecs {
			metricName := spec.External.Metric.Name
			answered := trigger.Specs[i]
			if answered.Error {
				isError = true
				continue
			}
			var metrics []external_metrics.ExternalMetricValue
			for _, v := range answered.Values {
				value := float64(v.Int)
				if v.Float > 0 {
					value = v.Float
				}
				metrics = append(metrics, scalers.GenerateMetricInMili(metricName, value))
			}
			if answered.Active {
				isActive = true
			}
			queueLength, maxValue, _ := scaledjob.CalculateQueueLengthAndMaxValue(metrics, metricSpecs, sj.MaxReplicaCount())
			scalersMetrics = append(scalersMetrics, scaledjob.ScalerMetrics{
				QueueLength: queueLength,
				MaxValue:    maxValue,
				IsActive:    isActive,
			})
		}
	}
	return scalersMetrics, isError
}

// buildMetricSpecs follows externalScaler.buildMetricSpecs with KEDA's exported helpers.
func buildMetricSpecs(triggerIndex int, specs []Spec) []v2.MetricSpec {
	result := make([]v2.MetricSpec, 0, len(specs))
	for _, spec := range specs {
		external := &v2.ExternalMetricSource{
			Metric: v2.MetricIdentifier{Name: scalers.GenerateMetricNameWithIndex(triggerIndex, spec.Name)},
		}
		if spec.TargetF > 0 {
			external.Target = scalers.GetMetricTargetMili(v2.AverageValueMetricType, spec.TargetF)
		} else {
			external.Target = scalers.GetMetricTarget(v2.AverageValueMetricType, spec.TargetSize)
		}
		result = append(result, v2.MetricSpec{External: external, Type: v2.ExternalMetricSourceType})
	}
	return result
}

func objects(jobs []Job, prefix string) []client.Object {
	var objs []client.Object
	for i, j := range jobs {
		jobName := fmt.Sprintf("%s-%d", prefix, i)
		job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{
			Name: jobName, Namespace: namespace,
			Labels: map[string]string{"scaledjob.keda.sh/name": name},
		}}
		for t, status := range j.Conditions {
			job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{
				Type: batchv1.JobConditionType(t), Status: corev1.ConditionStatus(status),
			})
		}
		objs = append(objs, job)
		for k, p := range j.Pods {
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{
				Name: fmt.Sprintf("%s-pod-%d", jobName, k), Namespace: namespace,
				Labels: map[string]string{"job-name": jobName},
			}}
			pod.Status.Phase = corev1.PodPhase(p.Phase)
			for t, status := range p.Conditions {
				pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{
					Type: corev1.PodConditionType(t), Status: corev1.ConditionStatus(status),
				})
			}
			objs = append(objs, pod)
		}
	}
	return objs
}

func countJobs(c client.Client) int64 {
	jobs := &batchv1.JobList{}
	must(c.List(context.Background(), jobs, client.InNamespace(namespace)))
	return int64(len(jobs.Items))
}

func must(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "jobmodel:", err)
		os.Exit(2)
	}
}
