"""Home: what the playground is, and one card per technique."""

import streamlit as st
from common import PAGE_PATHS

TECHNIQUES = [
    (
        "Classifier baseline",
        "Train a small CNN (or a ResNet) on Fashion-MNIST, digits, shapes or your own "
        "folder: accuracy per class, confusion matrix, training curves.",
        "views/classifier.py",
    ),
    (
        "Forward compatible training (FCT)",
        "Upgrade an embedding model without re-embedding the gallery: "
        "side-information, a learned transformation and the BCT baseline, scored by retrieval.",
        "views/fct.py",
    ),
    (
        "Uncertainty & OOD detection",
        "Deep ensembles, MC dropout and Bayesian layers; tell in-distribution "
        "images from unseen shapes, colours and noise.",
        "views/uncertainty.py",
    ),
    (
        "Active learning & annotation queue",
        "Pick the images worth labelling next and escalate uncertain "
        "predictions to an annotator queue that never loses a decision.",
        "views/active.py",
    ),
    (
        "Knowledge fusion",
        "Fuse image features with captions, a knowledge graph and label embeddings; "
        "zero-shot classes and retrieval-augmented heads.",
        "views/fusion.py",
    ),
    (
        "Inference optimization & latency benchmark",
        "fp16/bf16/int8, ONNX Runtime, pruning and "
        "distillation, measured against accuracy in one latency benchmark.",
        "views/optimize.py",
    ),
    (
        "Optimizers",
        "GD, SGD, mini-batch SGD, Adagrad, RMSprop, Adam and AdaDelta written out: trajectories "
        "on 2-D test functions and training curves side by side.",
        "views/optimizers.py",
    ),
    (
        "Self-supervised SwAV",
        "Learn features without labels (Sinkhorn-Knopp codes, prototypes, multi-crop) and "
        "see what they are worth with 1%, 10% and all labels.",
        "views/swav.py",
    ),
    (
        "3D cuboid annotation",
        "Load point clouds, propose and edit 3D cuboids, and export the annotations.",
        "views/cuboids.py",
    ),
]

st.title("Deep-learning playground")
st.markdown(
    "A hands-on playground of deep-learning techniques in PyTorch. Every technique is a small "
    "library you can import, a recipe you can run from the command line "
    "(`playground run recipes/<name>.toml`) and a page here where you change the settings, run it "
    "and look at the results. Runs are written to the runs root in the sidebar, so you can "
    "compare them later on the Runs page."
)

left, right = st.columns(2)
left.page_link(
    "views/data_explorer.py", label="Data explorer: look at the datasets", icon=":material/image_search:"
)
right.page_link("views/runs.py", label="Runs: open past results", icon=":material/history:")

st.header("Techniques")
columns = st.columns(2)
for index, (title, description, path) in enumerate(TECHNIQUES):
    with columns[index % 2].container(border=True):
        st.markdown(f"#### {title}")
        st.markdown(description)
        if path in PAGE_PATHS:
            st.page_link(path, label=f"Open {title}", icon=":material/arrow_forward:")
        else:
            st.caption("Coming soon")
