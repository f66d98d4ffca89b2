package dev.mergeforge.backend.cuda;

/**
 * Every kernel entry point the Java side launches, with the PTX module (kernels/&lt;module&gt;.cu,
 * built into {@code /ptx/&lt;module&gt;.ptx} of the jar by {@code make ptx}) that defines it.
 */
enum Kernel {
    LOAD_BF16("convert", "mf_load_bf16"),
    LOAD_F16("convert", "mf_load_f16"),
    STORE_BF16("convert", "mf_store_bf16"),
    STORE_F16("convert", "mf_store_f16"),
    SUB("elementwise", "mf_sub"),
    ADD("elementwise", "mf_add"),
    SCALE("elementwise", "mf_scale"),
    DIV_SCALAR("elementwise", "mf_div_scalar"),
    AXPY("elementwise", "mf_axpy"),
    LERP("elementwise", "mf_lerp"),
    WEIGHTED_SUM("elementwise", "mf_weighted_sum"),
    BLOCK_SUM_ABS("reduce", "mf_block_sum_abs"),
    BLOCK_SUM_SQUARES("reduce", "mf_block_sum_squares"),
    BLOCK_DOT("reduce", "mf_block_dot"),
    RADIX_HIST("select", "mf_radix_hist"),
    EQ_COUNT("select", "mf_eq_count"),
    KEEP_RANK_MASK("select", "mf_keep_rank_mask"),
    PHILOX_DROP("dare", "mf_philox_drop"),
    ELECT_SIGN("ties", "mf_elect_sign"),
    DISJOINT_MERGE("ties", "mf_disjoint_merge"),
    RELAX("aim", "mf_relax");

    final String module;
    final String entry;

    Kernel(String module, String entry) {
        this.module = module;
        this.entry = entry;
    }

    /** Classpath resource of the module's PTX. */
    String resource() { return "/ptx/" + module + ".ptx"; }
}
