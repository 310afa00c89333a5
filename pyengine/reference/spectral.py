def transposed_displacements(x, y, sq):
    """y[c, t] = x[t, c] - x[0, c] for t < n (float64); sq[t] += sum_c y[c, t]**2.

    Array methods only, so it runs on NumPy and CuPy arrays alike.
    """
    d = x.astype("float64") - x[0].astype("float64")
    y[:, : x.shape[0]] = d.T
    sq += (d * d).sum(axis=1)
    return y, sq
