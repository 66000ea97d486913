// wasm.sum: {values: [numbers]} -> {sum, count}.
package main

import polyhost "polyhost.dev/wasm-sdk"

func sum(params map[string]any, ctx polyhost.Ctx) (map[string]any, error) {
	values, ok := params["values"].([]any)
	if !ok {
		return nil, polyhost.Fail("bad_params", "`values` must be a list of numbers")
	}
	total := 0.0
	for i, value := range values {
		number, ok := value.(float64)
		if !ok {
			return nil, polyhost.Fail("bad_params", "values[%d] is not a number: %v", i, value)
		}
		total += number
	}
	ctx.Log(polyhost.Debug, "summed %d values", len(values))
	return map[string]any{"sum": total, "count": len(values)}, nil
}
