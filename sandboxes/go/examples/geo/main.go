// Command geo is an example polyhost sidecar with two node types: geo.distance (the
// great-circle distance between two points) and geo.bbox (the bounding box of points).
//
//	geo -listen 127.0.0.1:50051
package main

import "polyhost.dev/sidecar"

func main() {
	newSidecar().ServeOrExit()
}

// newSidecar returns the sidecar with its node types registered.
func newSidecar() *sidecar.Sidecar {
	s := sidecar.New("geo")
	s.Node(distanceType, distance)
	s.Node(bboxType, bbox)
	return s
}
