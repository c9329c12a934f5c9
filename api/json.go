package api

import (
	"encoding/json"
	"io"
	"reflect"
)

// WriteJSON writes v, a wire type, as one JSON document followed by a
// newline, indented by indent ("" for none): how every reply, event line
// and `p2ptun … --json` document is written. Every list and map in it
// that is nil is written as [] or {}, never null, so a script can range
// over any list without checking it first (an omitempty one is left out
// either way).
func WriteJSON(w io.Writer, v any, indent string) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", indent)
	return enc.Encode(NoNulls(v))
}

// NoNulls returns a copy of v in which every nil slice and map, in v's
// fields, elements and pointed-to values, is empty instead. v itself is
// not changed.
func NoNulls(v any) any {
	if v == nil {
		return nil
	}
	return noNulls(reflect.ValueOf(v)).Interface()
}

// noNulls is NoNulls of one value: a new value wherever something inside
// it changes, so that what the caller shares (a slice's array, a map) is
// only read.
func noNulls(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Slice:
		out := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		if v.Type().Elem().Kind() == reflect.Uint8 { // []byte: base64, no lists inside
			reflect.Copy(out, v)
			return out
		}
		for i := range v.Len() {
			out.Index(i).Set(noNulls(v.Index(i)))
		}
		return out
	case reflect.Map:
		out := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), noNulls(it.Value()))
		}
		return out
	case reflect.Struct:
		out := reflect.New(v.Type()).Elem()
		out.Set(v)
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				out.Field(i).Set(noNulls(v.Field(i)))
			}
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type().Elem())
		out.Elem().Set(noNulls(v.Elem()))
		return out
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(v.Type()).Elem()
		out.Set(noNulls(v.Elem()))
		return out
	default:
		return v
	}
}
