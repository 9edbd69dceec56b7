from setuptools import find_packages, setup

package_name = 'softmaint_train'

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='softmaint maintainers',
    maintainer_email='maintainers@softmaint.dev',
    description=('Offline tool: teacher training, cross-modal distillation into the student, '
                 'calibration, ONNX export, evaluation reports.'),
    license='Apache-2.0',
    entry_points={'console_scripts': [
        'softmaint-train = softmaint_train.cli:main',
        'softmaint-finetune-bags = softmaint_train.finetune_bags:main',
    ]},
)
