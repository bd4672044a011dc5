package avro

// DecodeNoRecover decodes like Decode but lets a panic of the decoder
// through, so that fuzzing finds it.
func DecodeNoRecover[T any](v *Value[T], b []byte) (T, error) { return v.decode(b, false) }

// DecodeUnionNoRecover is DecodeNoRecover for a Union.
func DecodeUnionNoRecover[I any](u *Union[I], b []byte) (I, error) { return u.decode(b, false) }
