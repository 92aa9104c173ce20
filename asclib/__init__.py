"""asclib: the library behind the notebooks (README.md; docs/library.md module by module).

Importing it first caps every numerical library at its AVX2 code path (`asclib.kernels`), so
that x86-64 CPUs compute the same bits; this must happen before numpy or torch is imported.

Module map, in the order the notebooks use them (the layers they stand in, and what each may
import: docs/library.md, "Layers"):

| module | what | notebooks |
|---|---|---|
| config, profiles | profiles (`quick`, `paper`) and paths; a profile by name with every network's sizes | all |
| data | reading a dataset in the DCASE layout | 01 |
| synth, scenes, devices | the embedded synthetic corpus: scenes, events, rooms, recording devices | 01, 12 |
| microphones | measured microphone responses: the unseen devices s7-s11, the pool DIR draws from | 01, 03, 12 |
| baseline | a logistic regression on mean log-mels that calibrates the corpus's difficulty | 01 |
| features | log-mels with valid deltas, cached | 02 |
| augment, compand | the registry of the augmentations (the paper's and later ones: docs/library.md, "The registries"); the offline ones; SoX's compander | 03 |
| batches | training batches and the online augmentations, in torch | 03-06, 09 |
| architectures, models | the registry of the networks; their classes | 04-06 |
| train, curves | training runs and their checkpoints; their curves for TensorBoard | 04-06, 09 |
| complexity | parameters, MACs per 10-second clip and sizes, the DCASE way | 04-06 |
| evaluation | the runs' predictions of the evaluation split: computed, stored, read back | 04-11 |
| runs, parallel, launch, distributed | every run made ahead, side by side: forked processes, one per GPU or a Slurm job array (submitit); torchrun | `reproduce`, `train` |
| metrics, tables, fusion | accuracies, intervals over seeds and clips, ensembles, the two-stage fusion | 04-09 |
| ablation | Table 3, and its rows beyond the paper device by device | 09, 12 |
| cam | class activation maps | 10 |
| released, paper | the authors' released scores; the paper's numbers | 07-09, 11 |
| plots, result_files, report | figures; result files; executing notebooks, the docs' generated blocks, the manifest | all |
| plan, predict, export, kernels, files | the dry run; classifying new recordings (DCASE submission files); networks as ONNX; CPU code paths; safe writes | command line |
"""

from asclib import kernels

kernels.pin()
