package main

import (
	"context"
	"math"

	"polyhost.dev/sidecar"
)

// earthRadiusKm is the mean radius of the Earth.
const earthRadiusKm = 6371.0088

var distanceType = sidecar.NodeType{
	Type:        "geo.distance",
	Description: "Great-circle (haversine) distance in kilometres between two points.",
	InputSchema: `{
		"type": "object",
		"properties": {"from": ` + pointSchema + `, "to": ` + pointSchema + `},
		"required": ["from", "to"]
	}`,
	OutputSchema: `{
		"type": "object",
		"properties": {"km": {"type": "number", "minimum": 0}},
		"required": ["km"]
	}`,
	Unary: true, // quick: one unary round trip instead of a stream
}

// distanceParams are geo.distance's parameters.
type distanceParams struct {
	From Point `json:"from"`
	To   Point `json:"to"`
}

// distance handles geo.distance.
func distance(_ context.Context, call *sidecar.Call) (any, error) {
	var p distanceParams
	if err := call.Decode(&p); err != nil {
		return nil, err
	}
	lat1, lon1, err := p.From.check("from")
	if err != nil {
		return nil, err
	}
	lat2, lon2, err := p.To.check("to")
	if err != nil {
		return nil, err
	}
	km := haversineKm(lat1, lon1, lat2, lon2)
	call.Logf(sidecar.Debug, "distance (%g,%g)-(%g,%g): %.3f km", lat1, lon1, lat2, lon2, km)
	return map[string]any{"km": km}, nil
}

// haversineKm is the great-circle distance between two points given in degrees.
func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat := (lat2 - lat1) * rad
	dLon := (lon2 - lon1) * rad
	a := math.Sin(dLat/2)*math.Sin(dLat/2) +
		math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(a)))
}
