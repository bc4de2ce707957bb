package tfcheck

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// tfModule is one directory of .tf files with its variables and locals
// evaluated.
type tfModule struct {
	dir    string
	blocks []*hclsyntax.Block
	vars   map[string]cty.Value
	ctx    *hcl.EvalContext
}

func loadModule(t *testing.T, dir string, given map[string]cty.Value) *tfModule {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	m := &tfModule{dir: dir, vars: map[string]cty.Value{}}
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		f, diags := hclsyntax.ParseConfig(src, name, hcl.InitialPos)
		if diags.HasErrors() {
			t.Fatalf("%s", diags.Error())
		}
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}

	// Variables: the test's sample value, else the default.
	for _, v := range m.blocksOf("variable") {
		name := v.Labels[0]
		if val, ok := given[name]; ok {
			m.vars[name] = val
			continue
		}
		def, ok := v.Body.Attributes["default"]
		if !ok {
			t.Fatalf("%s: variable %s has no default; give the test a sample value", dir, name)
		}
		val, diags := def.Expr.Value(nil)
		if diags.HasErrors() {
			t.Fatalf("%s: variable %s default: %s", dir, name, diags.Error())
		}
		m.vars[name] = val
	}

	// Everything that only exists at apply time is unknown.
	vars := map[string]cty.Value{
		"var":    cty.ObjectVal(m.vars),
		"path":   cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(dir), "root": cty.StringVal(dir), "cwd": cty.StringVal(dir)}),
		"data":   cty.DynamicVal,
		"module": cty.DynamicVal,
	}
	for _, r := range m.blocksOf("resource") {
		vars[r.Labels[0]] = cty.DynamicVal
	}
	m.ctx = &hcl.EvalContext{Variables: vars, Functions: tfFunctions()}

	// Locals, in dependency order.
	pending := map[string]hclsyntax.Expression{}
	for _, l := range m.blocksOf("locals") {
		for name, a := range l.Body.Attributes {
			pending[name] = a.Expr
		}
	}
	locals := map[string]cty.Value{}
	for len(pending) > 0 {
		progress := false
		for name, expr := range pending {
			ready := true
			for _, tr := range expr.Variables() {
				if tr.RootName() != "local" || len(tr) < 2 {
					continue
				}
				if a, ok := tr[1].(hcl.TraverseAttr); ok {
					if _, done := locals[a.Name]; !done {
						ready = false
					}
				}
			}
			if !ready {
				continue
			}
			vars["local"] = cty.ObjectVal(locals)
			val, diags := expr.Value(m.ctx)
			if diags.HasErrors() {
				t.Fatalf("%s: local.%s: %s", dir, name, diags.Error())
			}
			locals[name] = val
			delete(pending, name)
			progress = true
		}
		if !progress {
			t.Fatalf("%s: locals %v refer to each other or to missing locals", dir, slices.Sorted(maps.Keys(pending)))
		}
	}
	vars["local"] = cty.ObjectVal(locals)
	return m
}

func tfFunctions() map[string]function.Function {
	return map[string]function.Function{
		"can":        tryfunc.CanFunc,
		"coalesce":   stdlib.CoalesceFunc,
		"concat":     stdlib.ConcatFunc,
		"contains":   stdlib.ContainsFunc,
		"floor":      stdlib.FloorFunc,
		"format":     stdlib.FormatFunc,
		"jsonencode": stdlib.JSONEncodeFunc,
		"join":       stdlib.JoinFunc,
		"length":     stdlib.LengthFunc,
		"lower":      stdlib.LowerFunc,
		"regex":      stdlib.RegexFunc,
		"slice":      stdlib.SliceFunc,
		// Terraform's sensitivity marks are not modelled: nonsensitive
		// is the identity.
		"nonsensitive": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowNull: true}},
			Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
			Impl:   func(args []cty.Value, _ cty.Type) (cty.Value, error) { return args[0], nil },
		}),
		"file": function.New(&function.Spec{
			Params: []function.Parameter{{Name: "path", Type: cty.String}},
			Type:   function.StaticReturnType(cty.String),
			Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
				b, err := os.ReadFile(args[0].AsString())
				if err != nil {
					return cty.NilVal, err
				}
				return cty.StringVal(string(b)), nil
			},
		}),
	}
}

// blocksOf returns the top-level blocks of a type.
func (m *tfModule) blocksOf(typ string) []*hclsyntax.Block {
	return blocks(&hclsyntax.Body{Blocks: m.blocks}, typ)
}

func blocks(body *hclsyntax.Body, typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

func (m *tfModule) resources(typ string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocksOf("resource") {
		if b.Labels[0] == typ {
			out = append(out, b)
		}
	}
	return out
}

func (m *tfModule) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	for _, b := range m.resources(typ) {
		if b.Labels[1] == name {
			return b
		}
	}
	t.Fatalf("%s: no resource %s.%s", m.dir, typ, name)
	return nil
}

func (m *tfModule) data(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	for _, b := range m.blocksOf("data") {
		if b.Labels[0] == typ && b.Labels[1] == name {
			return b
		}
	}
	t.Fatalf("%s: no data %s.%s", m.dir, typ, name)
	return nil
}

func (m *tfModule) output(t *testing.T, name string) cty.Value {
	t.Helper()
	for _, o := range m.blocksOf("output") {
		if o.Labels[0] == name {
			return m.attr(t, o.Body, "value")
		}
	}
	t.Fatalf("%s: no output %s", m.dir, name)
	return cty.NilVal
}

func (m *tfModule) eval(t *testing.T, expr hclsyntax.Expression) cty.Value {
	t.Helper()
	v, diags := expr.Value(m.ctx)
	if diags.HasErrors() {
		t.Fatalf("%s: %s", m.dir, diags.Error())
	}
	return v
}

// attr evaluates an attribute of body; absent attributes are null.
func (m *tfModule) attr(t *testing.T, body *hclsyntax.Body, name string) cty.Value {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return m.eval(t, a.Expr)
}

// ref returns what an attribute refers to, without the final attribute:
// "aws_cloudfront_cache_policy.segments" for
// aws_cloudfront_cache_policy.segments.id.
func (m *tfModule) ref(t *testing.T, body *hclsyntax.Body, name string) string {
	t.Helper()
	a, ok := body.Attributes[name]
	if !ok {
		return ""
	}
	tr, diags := hcl.AbsTraversalForExpr(a.Expr)
	if diags.HasErrors() || len(tr) < 3 {
		t.Fatalf("%s: %s is not a reference to a resource's attribute", m.dir, name)
	}
	parts := []string{tr.RootName()}
	for _, step := range tr[1 : len(tr)-1] {
		if a, ok := step.(hcl.TraverseAttr); ok {
			parts = append(parts, a.Name)
		}
	}
	return strings.Join(parts, ".")
}

// validates reports whether value passes every validation block of the
// variable.
func (m *tfModule) validates(t *testing.T, name string, value cty.Value) bool {
	t.Helper()
	for _, v := range m.blocksOf("variable") {
		if v.Labels[0] != name {
			continue
		}
		vars := map[string]cty.Value{}
		for k, val := range m.vars {
			vars[k] = val
		}
		vars[name] = value
		ctx := &hcl.EvalContext{Variables: map[string]cty.Value{"var": cty.ObjectVal(vars)}, Functions: tfFunctions()}
		for _, val := range blocks(v.Body, "validation") {
			ok, diags := val.Body.Attributes["condition"].Expr.Value(ctx)
			if diags.HasErrors() || ok.IsNull() || !ok.IsKnown() || ok.Type() != cty.Bool {
				t.Fatalf("%s: variable %s validation with %#v: %s", m.dir, name, value, diags.Error())
			}
			if ok.False() {
				return false
			}
		}
		return true
	}
	t.Fatalf("%s: no variable %s", m.dir, name)
	return false
}

func (m *tfModule) str(t *testing.T, v cty.Value) string {
	t.Helper()
	s, ok := goValue(t, v).(string)
	if !ok {
		t.Fatalf("%s: want a string, got %#v", m.dir, v)
	}
	return s
}

func (m *tfModule) bool(t *testing.T, v cty.Value) bool {
	t.Helper()
	b, ok := goValue(t, v).(bool)
	if !ok {
		t.Fatalf("%s: want a bool, got %#v", m.dir, v)
	}
	return b
}

func (m *tfModule) int(t *testing.T, v cty.Value) int64 {
	t.Helper()
	n, ok := goValue(t, v).(int64)
	if !ok {
		t.Fatalf("%s: want a whole number, got %#v", m.dir, v)
	}
	return n
}

func (m *tfModule) strings(t *testing.T, v cty.Value) []string {
	t.Helper()
	if v.IsNull() || !v.CanIterateElements() {
		t.Fatalf("%s: want a list of strings, got %#v", m.dir, v)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, m.str(t, e))
	}
	return out
}

// get walks a dotted path of object attributes or map keys; anything
// missing is null.
func get(v cty.Value, path string) cty.Value {
	for name := range strings.SplitSeq(path, ".") {
		if v.IsNull() || !v.IsKnown() {
			return cty.NullVal(cty.DynamicPseudoType)
		}
		ty := v.Type()
		switch {
		case ty.IsObjectType() && ty.HasAttribute(name):
			v = v.GetAttr(name)
		case ty.IsMapType() && v.HasIndex(cty.StringVal(name)).True():
			v = v.Index(cty.StringVal(name))
		default:
			return cty.NullVal(cty.DynamicPseudoType)
		}
	}
	return v
}

// goValue converts a known primitive to string, bool or int64 (whole
// numbers), nil for null.
func goValue(t *testing.T, v cty.Value) any {
	t.Helper()
	if v.IsNull() {
		return nil
	}
	if !v.IsKnown() {
		t.Fatalf("value not known before apply: %#v", v)
	}
	switch v.Type() {
	case cty.String:
		return v.AsString()
	case cty.Bool:
		return v.True()
	case cty.Number:
		if n, acc := v.AsBigFloat().Int64(); acc == 0 {
			return n
		}
		f, _ := v.AsBigFloat().Float64()
		return f
	}
	return v
}
