"""Model interpretation: saturation mutagenesis, integrated gradients, TF-MoDISco motifs vs JASPAR.

Library functions work on plain models, score functions and arrays:

* :func:`genolm.interpret.ism.saturation_mutagenesis` (``score_fn, seqs -> (N, 4, L) effects``)
  and :func:`genolm.interpret.ism.ism_hypothetical` (effects -> actual / hypothetical scores);
* :func:`genolm.interpret.gradients.onehot_integrated_gradients` (any one-hot model) and
  :func:`genolm.interpret.gradients.classifier_integrated_gradients` (transformers classifiers);
* :func:`genolm.interpret.motifs.discover_motifs` (TF-MoDISco) and
  :func:`genolm.interpret.motifs.match_motifs` (TOMTOM against JASPAR, p/q-values, factors).

``genolm-interpret`` (:func:`genolm.pipelines.interpret.run`) chains them for a checkpoint.
"""
