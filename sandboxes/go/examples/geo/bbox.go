package main

import (
	"context"
	"fmt"
	"math"

	"polyhost.dev/sidecar"
)

var bboxType = sidecar.NodeType{
	Type:        "geo.bbox",
	Description: "Bounding box (minimum and maximum latitude and longitude) of a list of points.",
	InputSchema: `{
		"type": "object",
		"properties": {"points": {"type": "array", "items": ` + pointSchema + `, "minItems": 1}},
		"required": ["points"]
	}`,
	OutputSchema: `{
		"type": "object",
		"properties": {
			"min_lat": {"type": "number"}, "min_lon": {"type": "number"},
			"max_lat": {"type": "number"}, "max_lon": {"type": "number"},
			"count": {"type": "integer", "minimum": 1}
		},
		"required": ["min_lat", "min_lon", "max_lat", "max_lon", "count"]
	}`,
	Unary: true, // quick: one unary round trip instead of a stream
}

// box is geo.bbox's output.
type box struct {
	MinLat float64 `json:"min_lat"`
	MinLon float64 `json:"min_lon"`
	MaxLat float64 `json:"max_lat"`
	MaxLon float64 `json:"max_lon"`
	Count  int     `json:"count"`
}

// bbox handles geo.bbox. (Boxes are plain ranges of longitude: a set of points across the
// antimeridian gets the wide box.)
func bbox(_ context.Context, call *sidecar.Call) (any, error) {
	var p struct {
		Points []Point `json:"points"`
	}
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	if len(p.Points) == 0 {
		return nil, sidecar.NodeError{Code: "invalid_input", Field: "points", Message: "points needs at least one point"}
	}
	b := box{MinLat: math.Inf(1), MinLon: math.Inf(1), MaxLat: math.Inf(-1), MaxLon: math.Inf(-1)}
	for i, pt := range p.Points {
		lat, lon, err := pt.check(fmt.Sprintf("points[%d]", i))
		if err != nil {
			return nil, err
		}
		b.MinLat, b.MaxLat = math.Min(b.MinLat, lat), math.Max(b.MaxLat, lat)
		b.MinLon, b.MaxLon = math.Min(b.MinLon, lon), math.Max(b.MaxLon, lon)
		b.Count++
	}
	return b, nil
}
