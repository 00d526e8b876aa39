package campaigns

import (
	"strings"
	"testing"
)

// TestExprPos maps positions inside an expression back to the file, for each
// scalar style; each case names the text the mapped position must start at.
func TestExprPos(t *testing.T) {
	tests := []struct {
		name      string
		src       string // a YAML mapping with a "when" field
		line, col int    // position inside the expression
		at        string // the file text at the mapped position; "" = not mappable
	}{
		{"plain", "when: product.price < 1\n", 1, 9, "price < 1"},
		{"plain first char", "when: product.price < 1\n", 1, 1, "product"},
		{"plain past end", "when: a &&\n", 1, 5, "\n"},
		{"plain after other key", "x: 1\nwhen:   a || produkt\n", 1, 6, "produkt"},
		{"plain unicode", `when: num("价格") + produkt` + "\n", 1, 13, "produkt"},
		{"single quoted", "when: 'x == ''a'' && produkt'\n", 1, 13, "produkt'"},
		{"double quoted", `when: "x == \"a\" && produkt"` + "\n", 1, 13, `produkt"`},
		{"double quoted unicode escape", `when: "x == \"\u00e9\" && produkt"` + "\n", 1, 13, `produkt"`},
		{"double quoted hex escape", `when: "\x41 + produkt"` + "\n", 1, 5, `produkt"`},
		{"flow mapping", "data: {when: produkt.name}\n", 1, 1, "produkt.name}"},
		{"literal", "when: |\n  a &&\n    produkt\n", 2, 3, "produkt\n"},
		{"literal strip", "when: |-\n  a &&\n  produkt\n", 2, 1, "produkt\n"},
		{"literal leading blank", "when: |\n\n  a + produkt\n", 2, 5, "produkt\n"},
		{"literal deeper", "facts:\n  when: |\n      a ||\n      produkt\n", 2, 1, "produkt\n"},
		{"folded", "when: >\n  a &&\n  produkt\n", 1, 6, ""},
		{"plain multi-line", "when: a &&\n  produkt\n", 1, 6, ""},
		{"double quoted multi-line", "when: \"a &&\n  produkt\"\n", 1, 6, ""},
		{"tagged", "when: !!str a || produkt\n", 1, 6, ""},
		{"beyond value", "when: abc\n", 1, 9, ""},
		{"second line of one-line value", "when: abc\n", 2, 1, ""},
		{"no position", "when: abc\n", 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newDecoder("f.yaml", []byte(tt.src))
			root := p.load([]byte(tt.src))
			if root == nil {
				t.Fatalf("load: %v", p.errs)
			}
			n := findKey(root, "when")
			if n == nil {
				t.Fatal("no when node")
			}
			line, col, ok := p.exprPos(n, tt.line, tt.col)
			if tt.at == "" {
				if ok {
					t.Errorf("mapped to %d:%d, want no mapping", line, col)
				}
				return
			}
			if !ok {
				t.Fatalf("not mapped")
			}
			lines := strings.Split(tt.src, "\n")
			rest := string([]rune(lines[line-1])[col-1:]) + "\n"
			if !strings.HasPrefix(rest, tt.at) {
				t.Errorf("mapped to %d:%d, text there %q, want %q", line, col, rest, tt.at)
			}
		})
	}
}

// findKey returns the value of key anywhere in the mapping tree under n.
func findKey(n *yamlNode, key string) *yamlNode {
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i+1]
		}
		if v := findKey(n.Content[i+1], key); v != nil {
			return v
		}
	}
	return nil
}
