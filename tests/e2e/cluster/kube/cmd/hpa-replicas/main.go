// Command hpa-replicas answers, with the HPA controller's own replica calculator
// (k8s.io/kubernetes/pkg/controller/podautoscaler), what one HPA sync computes for
// an external metric: the e2e ScaledObject tests predict replica counts with it.
//
// One JSON request per input line, one JSON answer per output line:
//
//	{"type": "AverageValue"|"Value", "usage": <milli>, "target": <milli>,
//	 "current": <status replicas>, "ready": <Running and Ready Pods>, "tolerance": 0.1}
//	-> {"replicas": N} or {"error": "..."}
//
// The bounds (minReplicas, maxReplicas) and the behavior's rate limits are the
// controller's next step (normalizeDesiredReplicas), not the calculator's.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"
	"unsafe"

	autoscaling "k8s.io/api/autoscaling/v2"
	v1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/kubernetes/pkg/controller/podautoscaler"
	metricsclient "k8s.io/kubernetes/pkg/controller/podautoscaler/metrics"
)

type request struct {
	Type      string  `json:"type"`
	Usage     int64   `json:"usage"`
	Target    int64   `json:"target"`
	Current   int32   `json:"current"`
	Ready     int     `json:"ready"`
	Tolerance float64 `json:"tolerance"`
}

type answer struct {
	Replicas int32  `json:"replicas"`
	Error    string `json:"error,omitempty"`
}

// external is the metrics client: the one external metric's value.
type external struct{ usage int64 }

func (e external) GetResourceMetric(context.Context, v1.ResourceName, string, labels.Selector, string) (metricsclient.PodMetricsInfo, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("not an external metric")
}

func (e external) GetRawMetric(string, string, labels.Selector, labels.Selector) (metricsclient.PodMetricsInfo, time.Time, error) {
	return nil, time.Time{}, fmt.Errorf("not an external metric")
}

func (e external) GetObjectMetric(string, string, *autoscaling.CrossVersionObjectReference, labels.Selector) (int64, time.Time, error) {
	return 0, time.Time{}, fmt.Errorf("not an external metric")
}

func (e external) GetExternalMetric(string, string, labels.Selector) ([]int64, time.Time, error) {
	return []int64{e.usage}, time.Now(), nil
}

// tolerances builds the controller's Tolerances (unexported fields: scaleDown, then
// scaleUp), as NewHorizontalController does from --horizontal-pod-autoscaler-tolerance.
func tolerances(t float64) podautoscaler.Tolerances {
	var out podautoscaler.Tolerances
	if unsafe.Sizeof(out) != unsafe.Sizeof([2]float64{}) {
		panic("podautoscaler.Tolerances changed shape")
	}
	*(*[2]float64)(unsafe.Pointer(&out)) = [2]float64{t, t}
	return out
}

func pods(ready int) corelisters.PodLister {
	indexer := cache.NewIndexer(cache.MetaNamespaceKeyFunc, cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	for i := 0; i < ready; i++ {
		_ = indexer.Add(&v1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("pod-%d", i), Namespace: "ns", Labels: map[string]string{"app": "x"}},
			Status: v1.PodStatus{Phase: v1.PodRunning, Conditions: []v1.PodCondition{
				{Type: v1.PodReady, Status: v1.ConditionTrue}}},
		})
	}
	return corelisters.NewPodLister(indexer)
}

func compute(r request) (int32, error) {
	calc := podautoscaler.NewReplicaCalculator(external{r.Usage}, pods(r.Ready), 5*time.Minute, 30*time.Second)
	selector := labels.SelectorFromSet(labels.Set{"app": "x"})
	switch r.Type {
	case "AverageValue":
		n, _, _, err := calc.GetExternalPerPodMetricReplicas(r.Current, r.Target, "m", tolerances(r.Tolerance), "ns", &metav1.LabelSelector{})
		return n, err
	case "Value":
		n, _, _, err := calc.GetExternalMetricReplicas(r.Current, r.Target, "m", tolerances(r.Tolerance), "ns", &metav1.LabelSelector{}, selector)
		return n, err
	}
	return 0, fmt.Errorf("unknown type %q", r.Type)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var r request
		var a answer
		if err := json.Unmarshal(in.Bytes(), &r); err != nil {
			a.Error = err.Error()
		} else if n, err := compute(r); err != nil {
			a.Error = err.Error()
		} else {
			a.Replicas = n
		}
		if err := out.Encode(a); err != nil {
			os.Exit(1)
		}
	}
}
