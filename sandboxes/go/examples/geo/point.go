package main

import (
	"fmt"

	"polyhost.dev/sidecar"
)

// Point is a position on Earth in degrees. Pointers tell a missing coordinate from 0.
type Point struct {
	Lat *float64 `json:"lat"`
	Lon *float64 `json:"lon"`
}

// pointSchema is the JSON Schema of a Point.
const pointSchema = `{
	"type": "object",
	"properties": {
		"lat": {"type": "number", "minimum": -90, "maximum": 90},
		"lon": {"type": "number", "minimum": -180, "maximum": 180}
	},
	"required": ["lat", "lon"]
}`

// check returns the point's coordinates, or a NodeError naming the field (prefix + ".lat" or
// ".lon") that is missing or out of range. The host validates parameters against the input
// schema too; the handler checks again so that it is right on its own.
func (p Point) check(prefix string) (lat, lon float64, err error) {
	if lat, err = coordinate(p.Lat, prefix+".lat", 90); err != nil {
		return 0, 0, err
	}
	if lon, err = coordinate(p.Lon, prefix+".lon", 180); err != nil {
		return 0, 0, err
	}
	return lat, lon, nil
}

func coordinate(v *float64, field string, limit float64) (float64, error) {
	if v == nil {
		return 0, sidecar.NodeError{Code: "invalid_input", Field: field, Message: field + " is required"}
	}
	if *v < -limit || *v > limit {
		return 0, sidecar.NodeError{
			Code:    "invalid_input",
			Field:   field,
			Message: fmt.Sprintf("%s must be between %g and %g, got %g", field, -limit, limit, *v),
		}
	}
	return *v, nil
}
