// Command envwalk asks KEDA v2.21.0's own resolver for a container's environment:
// resolver.ResolveContainerEnv, the function KEDA calls to fill a trigger's
// ...FromEnv keys and a TriggerAuthentication's env parameters.
//
// It reads one JSON case per line on stdin: a Pod spec, the container name to read
// (envSourceContainerName; empty: the first), and the Secrets and ConfigMaps that
// exist in the namespace. They go into controller-runtime's fake client, which the
// resolver reads as it reads the API server. It writes one JSON line per case: the
// environment, or the resolver's error.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"

	"github.com/go-logr/logr"
	"github.com/kedacore/keda/v2/pkg/scaling/resolver"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

const namespace = "team"

// Case is one container environment to resolve.
type Case struct {
	ID            string                       `json:"id"`
	Pod           corev1.PodSpec               `json:"pod"`
	ContainerName string                       `json:"containerName"`
	Secrets       map[string]map[string]string `json:"secrets"`
	ConfigMaps    map[string]map[string]string `json:"configMaps"`
}

// Answer is what KEDA resolved.
type Answer struct {
	ID    string            `json:"id"`
	Env   map[string]string `json:"env"`
	Error string            `json:"error,omitempty"`
}

func main() {
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		fmt.Fprintln(os.Stderr, "envwalk:", err)
		os.Exit(2)
	}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<24)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var c Case
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintln(os.Stderr, "envwalk:", err)
			os.Exit(2)
		}
		var objects []client.Object
		for name, data := range c.Secrets {
			raw := map[string][]byte{}
			for k, v := range data {
				raw[k] = []byte(v)
			}
			objects = append(objects, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: raw,
			})
		}
		for name, data := range c.ConfigMaps {
			objects = append(objects, &corev1.ConfigMap{
				ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace}, Data: data,
			})
		}
		cl := fake.NewClientBuilder().WithScheme(scheme).WithObjects(objects...).Build()
		env, err := resolver.ResolveContainerEnv(
			context.Background(), cl, logr.Discard(), &c.Pod, c.ContainerName, namespace, nil,
		)
		answer := Answer{ID: c.ID, Env: env}
		if err != nil {
			answer.Env, answer.Error = nil, err.Error()
		}
		if err := out.Encode(answer); err != nil {
			fmt.Fprintln(os.Stderr, "envwalk:", err)
			os.Exit(2)
		}
	}
}
