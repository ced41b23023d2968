"""intelligen_tvm: IntelliGen (GIR + instruction-level dataflow graph) for Apache TVM."""
