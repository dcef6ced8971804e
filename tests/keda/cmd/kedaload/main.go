// Command kedaload polls an external scaler as KEDA's operator does, for the
// benchmarks (bench/keda_pattern.py): N ScaledJobs on one gRPC connection (KEDA
// keeps one per scalerAddress), each polling every interval from a random phase
// with GetMetricSpec, then GetMetrics for the spec's metric, then IsActive, through
// KEDA's own generated client. A Go caller, as KEDA is, so that on a small machine
// the load costs far less CPU than the scaler it measures.
//
// It prints one JSON line: calls made, errors by gRPC code, latency p50 and p99
// (milliseconds, per call) and the seconds the run took.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/kedacore/keda/v2/pkg/scalers/externalscaler"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
)

type summary struct {
	Calls      int            `json:"calls"`
	Errors     map[string]int `json:"errors"`
	FirstError string         `json:"firstError,omitempty"`
	P50        float64        `json:"p50Ms"`
	P99        float64        `json:"p99Ms"`
	Seconds    float64        `json:"seconds"`
}

func main() {
	address := flag.String("address", "", "the scaler's host:port")
	redis := flag.String("redis", "", "the Redis address in each trigger's metadata")
	jobs := flag.Int("jobs", 1000, "ScaledJobs")
	queues := flag.Int("queues", 10, "distinct lists (queue-0 ...)")
	interval := flag.Duration("interval", 30*time.Second, "pollingInterval")
	windows := flag.Int("windows", 2, "polls per ScaledJob")
	flag.Parse()
	conn, err := grpc.NewClient(*address, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	defer conn.Close()
	client := externalscaler.NewExternalScalerClient(conn)
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, *jobs**windows*3)
	errors := map[string]int{}
	firstError := ""
	record := func(took time.Duration, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		latencies = append(latencies, took)
		if err != nil {
			errors[status.Code(err).String()]++
			if firstError == "" {
				firstError = err.Error()
			}
			return false
		}
		return true
	}
	start := time.Now().Add(500 * time.Millisecond)
	var wg sync.WaitGroup
	for i := 0; i < *jobs; i++ {
		ref := &externalscaler.ScaledObjectRef{
			Name: fmt.Sprintf("job-%d", i), Namespace: "bench",
			ScalerMetadata: map[string]string{
				"scalerType": "redis", "address": *redis, "listName": fmt.Sprintf("queue-%d", i%*queues),
				"listLength": "5",
			},
		}
		phase := time.Duration(rand.Int63n(int64(*interval)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < *windows; k++ {
				time.Sleep(time.Until(start.Add(phase + time.Duration(k)*(*interval))))
				ctx := context.Background()
				t := time.Now()
				spec, err := client.GetMetricSpec(ctx, ref)
				if !record(time.Since(t), err) || len(spec.MetricSpecs) == 0 {
					continue
				}
				name := strings.TrimSpace(spec.MetricSpecs[0].MetricName)
				t = time.Now()
				_, err = client.GetMetrics(ctx, &externalscaler.GetMetricsRequest{ScaledObjectRef: ref, MetricName: name})
				record(time.Since(t), err)
				t = time.Now()
				_, err = client.IsActive(ctx, ref)
				record(time.Since(t), err)
			}
		}()
	}
	wg.Wait()
	sort.Slice(latencies, func(a, b int) bool { return latencies[a] < latencies[b] })
	pct := func(q float64) float64 {
		if len(latencies) == 0 {
			return 0
		}
		return float64(latencies[int(q*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	out, _ := json.Marshal(summary{
		Calls: len(latencies), Errors: errors, FirstError: firstError, P50: pct(0.50), P99: pct(0.99),
		Seconds: time.Since(start).Seconds(),
	})
	fmt.Println(string(out))
}
