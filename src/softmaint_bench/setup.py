from setuptools import find_packages, setup

package_name = 'softmaint_bench'

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
    description='Benchmark of the onboard node suite under field-rate sensor load.',
    license='Apache-2.0',
    entry_points={'console_scripts': [
        'softmaint-bench-suite = softmaint_bench.suite:main',
        'softmaint-bench-soak = softmaint_bench.soak:main',
        'softmaint-bench-frames = softmaint_bench.frames:main',
    ]},
)
