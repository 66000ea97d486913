package main

import (
	"context"
	"math"
	"slices"
	"testing"
	"time"

	"polyhost.dev/sidecar"
	"polyhost.dev/sidecar/gen/runtimev1"
	"polyhost.dev/sidecar/sidecartest"
)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDistance(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	cases := []struct {
		params string
		km     float64
	}{
		// Paris to London.
		{`{"from": {"lat": 48.8566, "lon": 2.3522}, "to": {"lat": 51.5074, "lon": -0.1278}}`, 343.56},
		{`{"from": {"lat": 0, "lon": 0}, "to": {"lat": 0, "lon": 0}}`, 0},
		// Pole to pole: half a circumference.
		{`{"from": {"lat": 90, "lon": 0}, "to": {"lat": -90, "lon": 0}}`, math.Pi * earthRadiusKm},
		// Across the antimeridian.
		{`{"from": {"lat": 0, "lon": 179.5}, "to": {"lat": 0, "lon": -179.5}}`, 111.195},
	}
	for _, tc := range cases {
		// Both node types are unary, so the host calls Run; Execute gives the same.
		out, err := c.Run(ctxT(t), "geo.distance", tc.params)
		if err != nil {
			t.Fatal(err)
		}
		if streamed, err := c.Execute(ctxT(t), "geo.distance", tc.params); err != nil ||
			string(streamed.Output) != string(out.Output) {
			t.Errorf("%s: Execute gave %s (%v), Run %s", tc.params, streamed.Output, err, out.Output)
		}
		var got struct{ KM float64 }
		if err := out.Decode(&got); err != nil {
			t.Fatalf("%s: %v", tc.params, err)
		}
		if math.Abs(got.KM-tc.km) > 0.01 {
			t.Errorf("%s: %.3f km, want %.3f", tc.params, got.KM, tc.km)
		}
	}
}

func TestDistanceNamesTheFieldAtFault(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	cases := map[string]string{
		`{"from": {"lat": 91, "lon": 0}, "to": {"lat": 0, "lon": 0}}`:      "from.lat",
		`{"from": {"lat": 0, "lon": 0}, "to": {"lat": 0, "lon": -180.5}}`:  "to.lon",
		`{"from": {"lat": 0}, "to": {"lat": 0, "lon": 0}}`:                 "from.lon",
		`{"from": {"lat": 0, "lon": 0}}`:                                   "to.lat",
		`{"from": {"lat": "north", "lon": 0}, "to": {"lat": 0, "lon": 0}}`: "from.lat",
	}
	for params, field := range cases {
		out, err := c.Run(ctxT(t), "geo.distance", params)
		if err != nil {
			t.Fatal(err)
		}
		if out.Error == nil || out.Error.GetField() != field || out.Error.GetRetryable() {
			t.Errorf("%s: %v, want an error on %s", params, out.Error, field)
			continue
		}
		if code := out.Error.GetCode(); code != "invalid_input" && code != "invalid_parameters" {
			t.Errorf("%s: code %s", params, code)
		}
	}
}

func TestBoundingBox(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	out, err := c.Run(ctxT(t), "geo.bbox", map[string]any{"points": []map[string]float64{
		{"lat": 48.85, "lon": 2.35}, {"lat": 51.5, "lon": -0.12}, {"lat": 40.41, "lon": -3.7},
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"min_lat":40.41,"min_lon":-3.7,"max_lat":51.5,"max_lon":2.35,"count":3}`
	if string(out.Output) != want {
		t.Errorf("got %s, want %s", out.Output, want)
	}

	for params, field := range map[string]string{
		`{"points": []}`: "points",
		`{"points": [{"lat": 1, "lon": 2}, {"lat": -100, "lon": 0}]}`: "points[1].lat",
	} {
		out, err := c.Run(ctxT(t), "geo.bbox", params)
		if err != nil {
			t.Fatal(err)
		}
		if out.Error == nil || out.Error.GetCode() != "invalid_input" || out.Error.GetField() != field {
			t.Errorf("%s: %v, want invalid_input on %s", params, out.Error, field)
		}
	}
}

func TestDescribeMarksBothTypesUnary(t *testing.T) {
	c := sidecartest.Start(t, newSidecar())
	resp, err := c.Runtime.Describe(ctxT(t), &runtimev1.DescribeRequest{ProtocolVersion: sidecar.ProtocolVersion})
	if err != nil {
		t.Fatal(err)
	}
	var unary []string
	for _, nt := range resp.GetNodeTypes() {
		if nt.GetUnary() {
			unary = append(unary, nt.GetType())
		}
	}
	if !slices.Equal(unary, []string{"geo.distance", "geo.bbox"}) {
		t.Errorf("unary types: %v", unary)
	}
}
