package main

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// TestREADMEListsEverySetting keeps the README's settings table honest:
// every environment variable the binary reads appears in it.
func TestREADMEListsEverySetting(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var walk func(rt reflect.Type)
	walk = func(rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			if tag, ok := f.Tag.Lookup("env"); ok {
				name := "MARQUEE_" + strings.Split(tag, ",")[0]
				if !strings.Contains(string(readme), "`"+name+"`") {
					t.Errorf("README does not document %s", name)
				}
			} else if f.Type.Kind() == reflect.Struct && f.IsExported() {
				walk(f.Type)
			}
		}
	}
	walk(reflect.TypeFor[config]())
}
