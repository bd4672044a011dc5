// Package shapes is a domain for the tests of AllListed: three types
// implement Shape, one does not.
package shapes

// Shape is what the list should hold every implementation of.
type Shape interface{ isShape() }

// Circle implements Shape.
type Circle struct{}

// Square implements Shape.
type Square struct{}

// Hexagon implements Shape by pointer.
type Hexagon struct{}

// Colour does not implement Shape.
type Colour struct{}

func (Circle) isShape()   {}
func (Square) isShape()   {}
func (*Hexagon) isShape() {}
