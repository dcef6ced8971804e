// Command sobounds answers, with KEDA v2.21.0's own ScaledObject methods, what KEDA
// makes of a ScaledObject's replica counts: CheckReplicaCountBoundsAreValid (the
// webhook's and controller's check), GetHPAMinReplicas and GetHPAMaxReplicas (the
// bounds of the HPA KEDA creates).
//
// One JSON ScaledObject per input line; one JSON answer per output line:
// {"error": "..." or "", "hpaMin": N, "hpaMax": N}.
package main

import (
	"bufio"
	"encoding/json"
	"os"

	kedav1alpha1 "github.com/kedacore/keda/v2/apis/keda/v1alpha1"
)

type answer struct {
	Error  string `json:"error"`
	HPAMin int32  `json:"hpaMin"`
	HPAMax int32  `json:"hpaMax"`
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<20)
	out := json.NewEncoder(os.Stdout)
	for in.Scan() {
		var so kedav1alpha1.ScaledObject
		var a answer
		if err := json.Unmarshal(in.Bytes(), &so); err != nil {
			a.Error = "json: " + err.Error()
		} else {
			if err := kedav1alpha1.CheckReplicaCountBoundsAreValid(&so); err != nil {
				a.Error = err.Error()
			}
			a.HPAMin = *so.GetHPAMinReplicas()
			a.HPAMax = so.GetHPAMaxReplicas()
		}
		if err := out.Encode(a); err != nil {
			os.Exit(1)
		}
	}
}
