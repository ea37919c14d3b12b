"""Shared by the golden generators: adapter configs made reproducible, and the README that lists
every generated file with its SHA-256."""
import hashlib
import json
import os


def fix_adapter_config(adapter_dir, base):
    """Names the base relative to the repository (PEFT writes the path it was given), sorts
    target_modules (a set in PEFT: hash order otherwise) and drops PEFT's model card."""
    p = os.path.join(adapter_dir, "adapter_config.json")
    with open(p) as fh:
        d = json.load(fh)
    d["base_model_name_or_path"] = base
    if isinstance(d.get("target_modules"), list):
        d["target_modules"] = sorted(d["target_modules"])
    with open(p, "w") as fh:
        fh.write(json.dumps(d, indent=2, sort_keys=True) + "\n")
    card = os.path.join(adapter_dir, "README.md")
    if os.path.exists(card):
        os.remove(card)


def write_readme(out, title, provenance):
    """out/README.md: the title, the provenance paragraph, and every other file's SHA-256."""
    files = sorted(os.path.relpath(os.path.join(r, n), out) for r, _, ns in os.walk(out) for n in ns if n != "README.md" or r != out)
    lines = [f"# {title}", "", provenance, "", "## SHA-256", ""]
    for f in files:
        with open(os.path.join(out, f), "rb") as fh:
            lines.append(f"- `{f}` {hashlib.sha256(fh.read()).hexdigest()}")
    with open(os.path.join(out, "README.md"), "w") as fh:
        fh.write("\n".join(lines) + "\n")
