package avro

// DecodeNoRecover decodes like Decode but lets a panic of the decoder
// through, so that fuzzing finds it.
func DecodeNoRecover[T any](v *Value[T], b []byte) (T, error) {
	var zero T
	rv, err := v.c.decodeUnsafe(b)
	if err != nil {
		return zero, err
	}
	return rv.Interface().(T), nil
}

// DecodeUnionNoRecover is DecodeNoRecover for a Union.
func DecodeUnionNoRecover[I any](u *Union[I], b []byte) (I, error) {
	var zero I
	rv, err := u.c.decodeUnsafe(b)
	if err != nil {
		return zero, err
	}
	return rv.Interface().(I), nil
}
