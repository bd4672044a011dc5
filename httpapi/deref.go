package httpapi

import "reflect"

// derefAs returns *ptr as a T, for values made by jsoncodec.Union.New.
func derefAs[T any](ptr any) (T, bool) {
	v, ok := reflect.ValueOf(ptr).Elem().Interface().(T)
	return v, ok
}
