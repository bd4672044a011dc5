package estest

import (
	"slices"
	"testing"
)

func TestUnlisted(t *testing.T) {
	for _, c := range []struct {
		name                 string
		listed               []string
		wantMissing, wantDup []string
	}{
		{"all listed", []string{"Circle", "Square", "Hexagon"}, nil, nil},
		{"one forgotten", []string{"Circle", "Hexagon"}, []string{"Square"}, nil},
		{"only by pointer, forgotten", []string{"Circle", "Square"}, []string{"Hexagon"}, nil},
		{"none listed", nil, []string{"Circle", "Hexagon", "Square"}, nil},
		{"one twice", []string{"Circle", "Square", "Hexagon", "Square"}, nil, []string{"Square"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			missing, dup, err := unlisted("testdata/shapes", "Shape", c.listed)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(missing, c.wantMissing) || !slices.Equal(dup, c.wantDup) {
				t.Fatalf("unlisted = %q, %q; want %q, %q", missing, dup, c.wantMissing, c.wantDup)
			}
		})
	}
	if _, _, err := unlisted("testdata/shapes", "Colour", nil); err == nil {
		t.Fatal("a type that is not an interface was taken for one")
	}
}
