package dev.mergeforge.model;

import dev.mergeforge.errors.ConfigException;

/** The MLP nonlinearities the supported families use, named as config.json names them. */
enum Activation {
    /** silu(z) = z / (1 + e^−z). */
    SILU,
    /** GELU, tanh approximation (gelu_pytorch_tanh, gelu_new). */
    GELU_TANH,
    /** GELU with the exact error function (transformers' "gelu"). */
    GELU_ERF;

    static Activation parse(String name, String where) {
        return switch (name) {
            case "silu", "swish" -> SILU;
            case "gelu_pytorch_tanh", "gelu_new", "gelu_tanh" -> GELU_TANH;
            case "gelu" -> GELU_ERF;
            default -> throw new ConfigException(where + " '" + name
                    + "' is not supported (supported: silu, gelu, gelu_new, gelu_pytorch_tanh)");
        };
    }

    float apply(float z) {
        return switch (this) {
            // z / (1 + e^−z)
            case SILU -> z / (1f + (float) Math.exp(-z));
            // 0.5·z·(1 + tanh(√(2/π)·(z + 0.044715·z³)))
            case GELU_TANH -> (float) (0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * (double) z * z * z))));
            // 0.5·z·(1 + erf(z/√2))
            case GELU_ERF -> (float) (0.5 * z * (1 + Erf.erf(z / Math.sqrt(2))));
        };
    }

    /** The error function in double precision (Abramowitz–Stegun series / continued fraction split). */
    static final class Erf {
        private Erf() {}

        static double erf(double x) {
            double a = Math.abs(x);
            double r;
            if (a < 2.5) {
                // erf(x) = 2/√π · Σ_n (−1)^n x^(2n+1) / (n! (2n+1))
                double term = a, sum = a, x2 = a * a;
                for (int n = 1; n < 200 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
                    term *= -x2 / n;
                    sum += term / (2 * n + 1);
                }
                r = 2 / Math.sqrt(Math.PI) * sum;
            } else {
                // erfc(x) = e^−x² / √π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...)))) (Lentz-free backward evaluation)
                double f = 0;
                for (int k = 60; k >= 1; k--) f = (k / 2.0) / (a + f);
                r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
            }
            return x < 0 ? -r : r;
        }
    }
}
